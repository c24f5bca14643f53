package microcrystalnet.fiji;

import ij.ImagePlus;
import ij.measure.Calibration;
import ij.process.ImageProcessor;

import java.awt.image.ColorModel;
import java.awt.image.IndexColorModel;
import java.io.BufferedOutputStream;
import java.io.BufferedReader;
import java.io.File;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.Locale;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * One long-lived Python worker ({@code python -m microcrystalnet worker}) for every analysis of
 * this ImageJ: started on first use, it keeps its models loaded, so an image after the first
 * costs its analysis and little more. Pixels go to it through its standard input (no temporary
 * image file); its answers are the command line's progress and result lines. The protocol is
 * described in {@code microcrystalnet/fiji_worker.py}.
 *
 * <p>Esc asks the worker to stop at its next stage; if a stage runs on for more than
 * {@link #CANCEL_WAIT_MS}, the worker is stopped and the next analysis starts a new one. A worker
 * that died is started again on the next call, with a line in the Log. The worker ends when
 * ImageJ quits (a shutdown hook closes it) or dies (its standard input closes).
 */
public class ResidentBackend implements Backend {

	static final String READY_PREFIX = "MCN-READY ";
	static final String LOG_PREFIX = "MCN-LOG ";
	static final String ERROR_PREFIX = "MCN-ERROR ";
	static final String CANCELLED_LINE = "MCN-CANCELLED";
	/** How long a cancelled request may take to reach its next stage before the worker is stopped. */
	static final long CANCEL_WAIT_MS = 3000;
	/** Put in the line queue when the worker's output ends (it exited or was stopped). */
	private static final String END = "\u0000end";

	private static ResidentBackend current;
	private static boolean shutdownHookAdded;

	private final String python;
	/** Not guarded by the instance's lock: ImageJ's quit stops the worker during an analysis. */
	private volatile Process process;
	private volatile OutputStream requests;
	private BlockingQueue<String> replies;
	private File log;
	private String pid = "";
	private int lastRequest;

	private ResidentBackend(String python) {
		this.python = python;
	}

	/** The worker of this ImageJ for {@code python} (started on first use); a worker of another Python is stopped. */
	public static synchronized ResidentBackend forPython(String python) {
		if (current != null && !current.python.equals(python)) {
			current.stop();
			current = null;
		}
		if (current == null) current = new ResidentBackend(python);
		if (!shutdownHookAdded) {
			Runtime.getRuntime().addShutdownHook(new Thread(new Runnable() {
				@Override
				public void run() {
					stopWorker();
				}
			}, "MicroCrystalNet worker stop"));
			shutdownHookAdded = true;
		}
		return current;
	}

	/** Stops the worker of this ImageJ, if one runs (ImageJ quits; or a macro wants a fresh one). */
	public static synchronized String stopWorker() {
		if (current != null) current.stop();
		return "";
	}

	/**
	 * The process id of the running worker, or "" when none runs: for macros and tests, e.g.
	 * {@code call("microcrystalnet.fiji.ResidentBackend.workerPid")}.
	 */
	public static synchronized String workerPid() {
		return current != null && current.process != null && current.process.isAlive() ? current.pid : "";
	}

	@Override
	public String describe() {
		return "resident Python worker, PID " + pid;
	}

	@Override
	public synchronized String analyze(ImagePlus image, String settingsJson, boolean overlay, Progress progress)
		throws Exception {
		String metadataFile = FileCalibration.metadataFile(image);
		StringBuilder request = header("analyze", image).append(", \"settings\": ").append(json(settingsJson))
			.append(", \"overlay\": ").append(overlay).append(", \"metadata_file\": ")
			.append(metadataFile == null ? "null" : json(metadataFile));
		File folder = new File(call(request, image, true, progress));
		if (!new File(folder, "RoiSet.zip").isFile())
			throw new Exception("The Python worker finished without results in " + folder);
		return folder.getPath(); // the caller deletes its parent, a temporary folder of its own
	}

	@Override
	public synchronized String denoise(ImagePlus image, String modelPath, int tileSize, Progress progress)
		throws Exception {
		StringBuilder request = header("denoise", image).append(", \"model\": ").append(json(modelPath))
			.append(", \"tile_size\": ").append(tileSize);
		File result = new File(call(request, image, false, progress));
		if (!result.isFile()) throw new Exception("The Python worker finished without a denoised image: " + result);
		return result.getPath();
	}

	/** The start of a request's JSON: command, id, title, the pixels' layout and the calibration. */
	private StringBuilder header(String command, ImagePlus image) {
		Calibration calibration = image.getCalibration();
		ImageProcessor processor = image.getProcessor();
		return new StringBuilder("{\"command\": \"").append(command).append("\", \"id\": ").append(++lastRequest)
			.append(", \"title\": ").append(json(image.getTitle()))
			.append(", \"width\": ").append(processor.getWidth()).append(", \"height\": ").append(processor.getHeight())
			.append(", \"bit_depth\": ").append(image.getBitDepth())
			.append(", \"pixel_width\": ").append(calibration.scaled() ? Double.toString(calibration.pixelWidth) : "null")
			.append(", \"unit\": ").append(json(calibration.getUnit()));
	}

	/** Sends one request with the image's pixels and waits for its result path; Esc cancels it. */
	private String call(StringBuilder request, ImagePlus image, boolean withPalette, Progress progress)
		throws Exception {
		start(progress);
		byte[] palette = withPalette ? palette(image.getProcessor()) : null;
		request.append(", \"palette\": ").append(palette != null).append("}\n");
		try {
			requests.write(request.toString().getBytes(StandardCharsets.UTF_8));
			requests.write(pixelBytes(image.getProcessor()));
			if (palette != null) requests.write(palette);
			requests.flush();
		} catch (IOException error) {
			throw diedError("could not take the image (" + error.getMessage() + ")");
		}
		return awaitResult(lastRequest, progress);
	}

	private String awaitResult(int request, Progress progress) throws Exception {
		long cancelledAt = 0;
		while (true) {
			String line = replies.poll(100, TimeUnit.MILLISECONDS);
			if (line == null) {
				if (progress.isCancelled() && cancelledAt == 0) {
					cancelledAt = System.currentTimeMillis();
					send("{\"command\": \"cancel\", \"id\": " + request + "}\n");
				} else if (cancelledAt != 0 && System.currentTimeMillis() - cancelledAt > CANCEL_WAIT_MS) {
					Settings.log("stopped the Python worker (PID " + pid + "): it did not reach its next stage within "
						+ CANCEL_WAIT_MS / 1000 + " s of Esc; the next analysis starts a new one");
					stop();
					throw new CancelledException();
				}
				continue;
			}
			if (line.equals(END)) throw diedError("stopped");
			if (line.startsWith(ExternalBackend.PROGRESS_PREFIX)) ExternalBackend.showProgress(line, progress);
			else if (line.startsWith(LOG_PREFIX)) Settings.log(line.substring(LOG_PREFIX.length()));
			else if (line.startsWith(ExternalBackend.RESULT_PREFIX))
				return line.substring(ExternalBackend.RESULT_PREFIX.length()).trim();
			else if (line.startsWith(ERROR_PREFIX))
				throw new Exception(Summary.jsonText(line.substring(ERROR_PREFIX.length())));
			else if (line.equals(CANCELLED_LINE)) throw new CancelledException();
		}
	}

	/** Starts the worker unless it runs, showing progress until it takes requests; Esc stops the start. */
	private void start(Progress progress) throws Exception {
		if (process != null && process.isAlive()) return;
		if (process != null) {
			Settings.log("the Python worker (PID " + pid + ") had stopped (exit status " + process.exitValue()
				+ "); starting a new one");
			forget();
		}
		progress.update(0.0, "starting Python (first use: then loading the models)");
		log = File.createTempFile("microcrystalnet-worker-", ".log");
		log.deleteOnExit();
		ProcessBuilder builder = new ProcessBuilder(python, "-m", "microcrystalnet", "worker")
			.redirectError(ProcessBuilder.Redirect.appendTo(log));
		String modelDir = Settings.installedModelDir();
		if (!modelDir.isEmpty() && System.getenv(Settings.MODEL_DIR_VARIABLE) == null)
			builder.environment().put(Settings.MODEL_DIR_VARIABLE, modelDir);
		try {
			process = builder.start();
		} catch (IOException error) {
			process = null;
			throw new Exception("Python could not be started: " + python + "\n(" + error.getMessage() + ")\n"
				+ ExternalBackend.WHICH_PYTHON);
		}
		requests = new BufferedOutputStream(process.getOutputStream(), 1 << 16);
		replies = new LinkedBlockingQueue<String>();
		readLines(process, replies);
		while (true) {
			String line = replies.poll(100, TimeUnit.MILLISECONDS);
			if (line == null) {
				if (!progress.isCancelled()) continue;
				stop();
				throw new CancelledException();
			}
			if (line.equals(END)) {
				process.waitFor(10, TimeUnit.SECONDS);
				String message = ExternalBackend.explain(python, process.isAlive() ? -1 : process.exitValue(),
					logText());
				forget();
				throw new Exception(message);
			}
			if (line.startsWith(READY_PREFIX)) {
				pid = line.substring(READY_PREFIX.length()).trim();
				Settings.log("started the Python worker (PID " + pid + ", " + python + ")");
				return;
			}
		}
	}

	/** Every line the worker writes, then {@link #END}, into {@code lines}, from a thread of its own. */
	private static void readLines(final Process worker, final BlockingQueue<String> lines) {
		Thread reader = new Thread(new Runnable() {
			@Override
			public void run() {
				try (BufferedReader output = new BufferedReader(new InputStreamReader(worker.getInputStream(),
					StandardCharsets.UTF_8))) {
					String line;
					while ((line = output.readLine()) != null)
						lines.add(line);
				} catch (IOException ignored) {
					// the worker ended or was stopped: nothing more to read
				}
				lines.add(END);
			}
		}, "MicroCrystalNet worker output");
		reader.setDaemon(true);
		reader.start();
	}

	private void send(String line) throws Exception {
		try {
			requests.write(line.getBytes(StandardCharsets.UTF_8));
			requests.flush();
		} catch (IOException error) {
			throw diedError("could not be reached (" + error.getMessage() + ")");
		}
	}

	/** The error for a worker that died during a request; the next call starts a new one. */
	private Exception diedError(String what) throws InterruptedException {
		process.waitFor(10, TimeUnit.SECONDS);
		String status = process.isAlive() ? "" : " (exit status " + process.exitValue() + ")";
		String message = "The Python worker (PID " + pid + ") " + what + status + "; the next analysis starts a new "
			+ "one.\n" + ExternalBackend.lastLines(logText(), 12);
		stop();
		return new Exception(message.trim());
	}

	/** Closes the worker's input (it exits by itself), then stops it if it has not within 5 s. */
	private void stop() {
		Process worker = process;
		if (worker == null) return;
		try {
			requests.close();
		} catch (IOException ignored) {
			// already closed: the worker is gone or going
		}
		try {
			if (!worker.waitFor(5, TimeUnit.SECONDS)) worker.destroyForcibly().waitFor(5, TimeUnit.SECONDS);
		} catch (InterruptedException interrupted) {
			worker.destroyForcibly();
			Thread.currentThread().interrupt();
		}
		forget();
	}

	private void forget() {
		process = null;
		if (log != null && !log.delete()) log.deleteOnExit();
		log = null;
	}

	private String logText() {
		try {
			return log == null ? "" : new String(Files.readAllBytes(log.toPath()), StandardCharsets.UTF_8);
		} catch (IOException error) {
			return "(the worker's log " + log + " cannot be read: " + error.getMessage() + ")";
		}
	}

	/** ImageJ's pixel array of the current slice as little-endian bytes (see fiji_worker.py). */
	static byte[] pixelBytes(ImageProcessor processor) {
		Object pixels = processor.getPixels();
		if (pixels instanceof byte[]) return (byte[]) pixels;
		int count = processor.getWidth() * processor.getHeight();
		int size = pixels instanceof short[] ? 2 : 4;
		ByteBuffer bytes = ByteBuffer.allocate(count * size).order(ByteOrder.LITTLE_ENDIAN);
		if (pixels instanceof short[]) bytes.asShortBuffer().put((short[]) pixels);
		else if (pixels instanceof float[]) bytes.asFloatBuffer().put((float[]) pixels);
		else bytes.asIntBuffer().put((int[]) pixels);
		return bytes.array();
	}

	/** The colour table of an 8-bit image whose LUT is not the gray ramp: 256 reds, greens, blues; else null. */
	static byte[] palette(ImageProcessor processor) {
		ColorModel model = processor.getColorModel();
		if (processor.getBitDepth() != 8 || processor.isDefaultLut() || !(model instanceof IndexColorModel))
			return null;
		IndexColorModel table = (IndexColorModel) model;
		byte[] channels = new byte[3 * 256];
		byte[] channel = new byte[table.getMapSize()];
		table.getReds(channel);
		System.arraycopy(channel, 0, channels, 0, Math.min(256, channel.length));
		table.getGreens(channel);
		System.arraycopy(channel, 0, channels, 256, Math.min(256, channel.length));
		table.getBlues(channel);
		System.arraycopy(channel, 0, channels, 512, Math.min(256, channel.length));
		return channels;
	}

	/** {@code text} as a JSON string. */
	static String json(String text) {
		StringBuilder quoted = new StringBuilder("\"");
		for (char c : text.toCharArray()) {
			if (c == '"' || c == '\\') quoted.append('\\').append(c);
			else if (c < 0x20 || c > 0x7e) quoted.append(String.format(Locale.ROOT, "\\u%04x", (int) c));
			else quoted.append(c);
		}
		return quoted.append('"').toString();
	}
}
