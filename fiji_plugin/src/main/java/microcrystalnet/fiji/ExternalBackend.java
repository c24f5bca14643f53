package microcrystalnet.fiji;

import ij.ImagePlus;
import ij.io.FileSaver;

import java.io.BufferedReader;
import java.io.File;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Runs {@code python -m microcrystalnet analyze} as a separate process on a temporary TIFF
 * of the image, reading its machine-readable progress lines, and stops it when the user
 * presses Esc. A new Python per image (6 to 10 s more each): the fallback to
 * {@link ResidentBackend}, chosen in Settings as "External (one process per image)".
 */
public class ExternalBackend implements Backend {

	static final String PROGRESS_PREFIX = "MCN-PROGRESS ";
	static final String RESULT_PREFIX = "MCN-RESULT ";
	private static final int EXIT_MODEL = 3;
	/** Seconds a stopped command gets to end on its own (write what it finished) before it is killed. */
	private static final int STOP_WAIT_S = 15;
	/** How to point the plugin at the Python that has MicroCrystalNet: every message about a missing Python says it. */
	static final String WHICH_PYTHON = "Set the Python that has MicroCrystalNet (the path that 'scripts/mcn --python-path' "
		+ "prints in a MicroCrystalNet checkout) in Plugins > MicroCrystalNet > Settings..., or, for headless and batch "
		+ "runs, in the environment variable " + Settings.PYTHON_VARIABLE + " (export " + Settings.PYTHON_VARIABLE
		+ "=/path/to/python).";

	private final String python;
	private volatile String resultFolder;

	public ExternalBackend(String python) {
		this.python = python;
	}

	@Override
	public String describe() {
		return "external Python (" + python + ")";
	}

	@Override
	public String analyze(ImagePlus image, String settingsJson, boolean overlay, Progress progress) throws Exception {
		return inNewWorkFolder(work -> {
			File tiff = saveTemporaryTiff(image, work);
			File settings = new File(work, "settings.json");
			Files.write(settings.toPath(), settingsJson.getBytes(StandardCharsets.UTF_8));
			List<String> arguments = new ArrayList<String>(Arrays.asList("analyze", tiff.getPath(), "--out",
				work.getPath(), "--config", settings.getPath(), "--progress", "machine", "--image-name",
				image.getTitle()));
			if (!overlay) arguments.add("--no-overlay");
			String metadataFile = FileCalibration.metadataFile(image);
			if (metadataFile != null) arguments.addAll(Arrays.asList("--metadata-from", metadataFile));
			runPython(work, progress, arguments.toArray(new String[0]));
			File folder = resultFolder == null ? null : new File(resultFolder);
			if (folder == null || !folder.getCanonicalFile().getParentFile().equals(work.getCanonicalFile())
				|| !new File(folder, "RoiSet.zip").isFile())
				throw new Exception("The Python backend finished without results");
			return folder.getPath();
		});
	}

	@Override
	public String denoise(ImagePlus image, String modelPath, int tileSize, Progress progress) throws Exception {
		return inNewWorkFolder(work -> {
			File tiff = saveTemporaryTiff(image, work);
			progress.update(0.0, "Noise2Void");
			runPython(work, progress, "n2v", "denoise", tiff.getPath(), "--model", modelPath, "--out", work.getPath(),
				"--tile-size", Integer.toString(tileSize), "--keep-data-bar", "-q");
			File result = new File(work, "image_n2v.tif");
			if (!result.isFile()) throw new Exception("The Python backend finished without a denoised image");
			return result.getPath();
		});
	}

	/** A command's work in its folder: the path of what it wrote there. */
	private interface WorkInFolder {
		String run(File work) throws Exception;
	}

	/**
	 * Runs {@code step} in a new temporary folder and returns its result, a path inside that folder,
	 * whose caller deletes the folder after use. A failure or Esc deletes it here: the exception's
	 * message carries what the backend's log said, and nothing else in it is worth keeping.
	 */
	private static String inNewWorkFolder(WorkInFolder step) throws Exception {
		File work = Files.createTempDirectory("microcrystalnet-").toFile();
		try {
			return step.run(work);
		} catch (Exception failedOrCancelled) {
			ResultsDisplay.deleteTree(work);
			throw failedOrCancelled;
		}
	}

	/** The image (not copied; the user's title kept) as a calibrated TIFF in {@code work}. */
	private static File saveTemporaryTiff(ImagePlus image, File work) throws Exception {
		return saveCalibratedTiff(image, new File(work, "image.tif"), "image");
	}

	/** The image's current slice (not copied) with its calibration as {@code tiff}, titled {@code title}. */
	static File saveCalibratedTiff(ImagePlus image, File tiff, String title) throws Exception {
		ImagePlus copy = new ImagePlus(title, image.getProcessor());
		copy.setCalibration(image.getCalibration());
		if (!new FileSaver(copy).saveAsTiff(tiff.getPath()))
			throw new Exception("Could not write the temporary image " + tiff);
		return tiff;
	}

	/** Runs {@code python -m microcrystalnet ARGUMENTS}, streaming progress; Esc stops it. */
	void runPython(File work, Progress progress, String... arguments) throws Exception {
		File log = new File(work, "python.log");
		List<String> command = new ArrayList<String>();
		command.add(python);
		command.add("-m");
		command.add("microcrystalnet");
		for (String argument : arguments)
			command.add(argument);
		ProcessBuilder builder = new ProcessBuilder(command).redirectError(log);
		String modelDir = Settings.installedModelDir();
		if (!modelDir.isEmpty() && System.getenv(Settings.MODEL_DIR_VARIABLE) == null)
			builder.environment().put(Settings.MODEL_DIR_VARIABLE, modelDir);
		final Process process;
		try {
			process = builder.start();
		} catch (IOException error) {
			throw new Exception("Python could not be started: " + python + "\n(" + error.getMessage() + ")\n"
				+ WHICH_PYTHON);
		}
		Thread reader = new Thread(new Runnable() {
			@Override
			public void run() {
				readMachineLines(process, progress);
			}
		}, "MicroCrystalNet progress");
		reader.setDaemon(true);
		reader.start();
		while (!process.waitFor(100, TimeUnit.MILLISECONDS)) {
			if (progress.isCancelled()) {
				// asked to stop first (SIGTERM: it ends as on Ctrl-C, a batch keeps its finished images and
				// lets go of its folder), killed only if it does not
				process.destroy();
				if (!process.waitFor(STOP_WAIT_S, TimeUnit.SECONDS))
					process.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
				throw new CancelledException();
			}
		}
		reader.join(2000);
		int status = process.exitValue();
		if (status != 0) throw new Exception(explain(python, status, new String(Files.readAllBytes(log.toPath()),
			StandardCharsets.UTF_8)));
	}

	private void readMachineLines(Process process, Progress progress) {
		try (BufferedReader lines = new BufferedReader(new InputStreamReader(process.getInputStream(),
			StandardCharsets.UTF_8))) {
			String line;
			while ((line = lines.readLine()) != null) {
				if (line.startsWith(RESULT_PREFIX)) resultFolder = line.substring(RESULT_PREFIX.length()).trim();
				if (line.startsWith(PROGRESS_PREFIX)) showProgress(line, progress);
			}
		} catch (IOException ignored) {
			// the process ended or was stopped: nothing more to read
		}
	}

	/** Shows a line {@code MCN-PROGRESS <fraction> <stage>}. */
	static void showProgress(String line, Progress progress) {
		String[] parts = line.substring(PROGRESS_PREFIX.length()).trim().split(" ", 2);
		try {
			progress.update(Double.parseDouble(parts[0]), parts.length > 1 ? parts[1] : "");
		} catch (NumberFormatException ignored) {
			// a line that merely starts like ours: not progress
		}
	}

	/** What a Python that exited with {@code status} (-1: unknown) and wrote {@code errorOutput} means for the user. */
	static String explain(String python, int status, String errorOutput) {
		String tail = lastLines(errorOutput, 12);
		if (errorOutput.contains("No module named microcrystalnet"))
			return "The Python at " + python + " does not have MicroCrystalNet installed.\n" + WHICH_PYTHON;
		if (status == EXIT_MODEL)
			return "The model is not available or not usable:\n" + tail;
		return "The Python backend failed (exit status " + status + "):\n" + tail;
	}

	static String lastLines(String text, int count) {
		String[] lines = text.trim().split("\n");
		StringBuilder kept = new StringBuilder();
		for (int i = Math.max(0, lines.length - count); i < lines.length; i++)
			kept.append(lines[i]).append('\n');
		return kept.toString().trim();
	}
}
