package microcrystalnet.fiji;

import ij.IJ;
import ij.ImagePlus;
import ij.WindowManager;
import ij.gui.Roi;
import ij.io.FileInfo;
import ij.io.RoiEncoder;
import ij.plugin.frame.Recorder;
import ij.plugin.frame.RoiManager;

import java.io.BufferedOutputStream;
import java.io.File;
import java.io.FileOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;

/**
 * What the training and batch commands share: running {@code python -m microcrystalnet COMMAND ...}
 * (the one place they call Python, so it can be routed elsewhere later), and writing the image and
 * the ROI Manager's outlines as files that command reads.
 */
final class PythonCommand {

	private PythonCommand() {
	}

	/**
	 * Runs {@code python -m microcrystalnet ARGUMENTS} with the Python of Settings..., its
	 * {@code MCN-PROGRESS} lines shown as progress; Esc stops it ({@link CancelledException}). The
	 * error output goes to {@code work/python.log}; a failure throws an exception with its last lines.
	 */
	static void run(File work, Progress progress, String... arguments) throws Exception {
		new ExternalBackend(Settings.python()).runPython(work, progress, arguments);
	}

	/** A new temporary folder for one command's files; the caller deletes it (ResultsDisplay.deleteTree). */
	static File workFolder() throws IOException {
		return Files.createTempDirectory("microcrystalnet-").toFile();
	}

	/**
	 * The image (its calibration kept) as a TIFF in {@code work} named like the image, so what the
	 * backend reports and records (a model's training data, the patches' source) names it.
	 */
	static File saveImage(ImagePlus image, File work) throws Exception {
		String name = AnalyzeCrystals.baseName(image.getTitle()).replaceAll("[^\\w .()+-]", "_").trim();
		return ExternalBackend.saveCalibratedTiff(image, new File(work, (name.isEmpty() ? "image" : name) + ".tif"),
			image.getTitle());
	}

	/** The lines of the backend's messages ({@code work/python.log}) that contain one of {@code texts}, in the Log. */
	static void logMessages(File work, String... texts) {
		try {
			for (String line : Files.readAllLines(new File(work, "python.log").toPath(), StandardCharsets.UTF_8))
				for (String text : texts)
					if (line.contains(text)) {
						Settings.log(line.trim());
						break;
					}
		} catch (IOException ignored) {
			// no messages to show: the result is there all the same
		}
	}

	/**
	 * The area ROIs of the ROI Manager (lines and points outline no crystal) taken as drawn on
	 * {@code image}, except those that Analyze Crystals' Add mode named after another open image
	 * ({@code other.tif:0001-RES}); null, after saying so and {@code advice}, when there are none.
	 */
	static List<Roi> outlines(ImagePlus image, String advice) {
		List<Roi> outlines = new ArrayList<Roi>();
		List<String> otherImages = new ArrayList<String>(Arrays.asList(WindowManager.getImageTitles()));
		otherImages.remove(image.getTitle());
		int ofOthers = 0;
		RoiManager manager = RoiManager.getInstance();
		if (manager != null) for (Roi roi : manager.getRoisAsArray()) {
			if (roi == null || !roi.isArea()) continue;
			String name = roi.getName() == null ? "" : roi.getName();
			if (name.indexOf(':') > 0 && otherImages.contains(name.substring(0, name.indexOf(':')))) ofOthers++;
			else outlines.add(roi);
		}
		if (ofOthers > 0) Settings.log(ofOthers + " ROIs named after other open images left out; " + outlines.size()
			+ " taken as outlines of " + image.getTitle());
		if (!outlines.isEmpty()) return outlines;
		AnalyzeCrystals.fail("There are no crystal outlines in the ROI Manager.\nOutline crystals of " + image.getTitle()
			+ " (freehand, polygon, wand...) and add each with 't' (Edit > Selection > Add to Manager)" + advice);
		return null;
	}

	/** The arguments of a training command, given the files {@link #train} wrote in {@code work}. */
	interface Training {
		List<String> arguments(File tiff, File roiSet, List<String> roiNames, File work) throws Exception;
	}

	/**
	 * Writes the image and its outlines into a temporary folder, runs the command that
	 * {@code training} makes of them with progress, puts the backend's lines that contain one of
	 * {@code logged} into the Log, and checks that it wrote {@code result}. False after saying why
	 * not (Esc: in the status line; a failure: {@link AnalyzeCrystals#fail}).
	 */
	static boolean train(ImagePlus image, List<Roi> outlines, Training training, File result, String... logged) {
		File work = null;
		try {
			work = workFolder();
			File tiff = saveImage(image, work);
			File roiSet = new File(work, "RoiSet.zip");
			List<String> names = saveRois(outlines, roiSet);
			List<String> arguments = training.arguments(tiff, roiSet, names, work);
			arguments.addAll(Arrays.asList("--progress", "machine"));
			Progress progress = Progress.inStatusBar();
			progress.update(0, "reading " + outlines.size() + " outlines of " + image.getTitle());
			run(work, progress, arguments.toArray(new String[0]));
			logMessages(work, logged);
			if (!result.exists()) throw new Exception("The Python backend finished without writing " + result);
			return true;
		} catch (CancelledException cancelled) {
			Recorder.disableCommandRecording();
			IJ.showStatus("MicroCrystalNet: training cancelled; " + result.getName() + " is as it was");
		} catch (Exception error) {
			AnalyzeCrystals.fail(image.getTitle() + ": " + message(error));
		} finally {
			IJ.showProgress(1.0);
			if (work != null) ResultsDisplay.deleteTree(work);
		}
		return false;
	}

	/** The name a ROI has in the RoiSet.zip that {@link #saveRois} writes (ImageJ's own label when it has none). */
	static String name(Roi roi, int index) {
		String name = roi.getName();
		return name == null || name.trim().isEmpty() ? String.format("%04d", index + 1) : name.trim();
	}

	/**
	 * The ROIs as a Fiji RoiSet.zip at {@code zip}, named by {@link #name}; a name that repeats
	 * gets "-2", "-3"... so every entry is its own. Returns the names as written.
	 */
	static List<String> saveRois(List<Roi> rois, File zip) throws IOException {
		List<String> names = new ArrayList<String>();
		Set<String> used = new HashSet<String>();
		try (ZipOutputStream out = new ZipOutputStream(new BufferedOutputStream(new FileOutputStream(zip)))) {
			for (int index = 0; index < rois.size(); index++) {
				String name = name(rois.get(index), index);
				for (int copy = 2; !used.add(name); copy++)
					name = name(rois.get(index), index) + "-" + copy;
				Roi roi = (Roi) rois.get(index).clone();
				roi.setName(name);
				out.putNextEntry(new ZipEntry(name + ".roi"));
				out.write(RoiEncoder.saveAsByteArray(roi));
				out.closeEntry();
				names.add(name);
			}
		}
		return names;
	}

	/** {@code <folder of the image's file, else the home folder>/<image name><suffix>}. */
	static String besideImage(ImagePlus image, String suffix) {
		FileInfo info = image.getOriginalFileInfo();
		String folder = info != null && info.directory != null && !info.directory.isEmpty()
			&& new File(info.directory).isDirectory() ? info.directory : System.getProperty("user.home");
		return new File(folder, AnalyzeCrystals.baseName(image.getTitle()) + suffix).getPath();
	}

	/** The message of an exception, for the user. */
	static String message(Exception error) {
		return error.getMessage() != null ? error.getMessage() : error.toString();
	}

	/** Status line and Log. */
	static void report(String message) {
		Settings.log(message);
		IJ.showStatus("MicroCrystalNet: " + message);
	}
}
