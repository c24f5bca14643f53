package microcrystalnet.fiji;

import ij.IJ;
import ij.ImagePlus;
import ij.gui.Roi;
import ij.measure.ResultsTable;
import ij.plugin.frame.RoiManager;

import java.awt.Color;
import java.awt.GraphicsEnvironment;
import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Arrays;
import java.util.List;

/**
 * Shows a result folder in ImageJ: crystals in the ROI Manager, the Results and Summary tables,
 * a colour legend in the Log. Both backends end here, so both show the same thing.
 */
public final class ResultsDisplay {

	static final String RESULTS_TITLE = "MicroCrystalNet Results";
	static final String SUMMARY_TITLE = "MicroCrystalNet Summary";
	static final String PREPROCESSING_TITLE = "MicroCrystalNet Preprocessing";
	/** The marker of a result folder (see microcrystalnet.io.result_folder): only such folders are replaced. */
	static final String MARKER = ".microcrystalnet-result";
	static final String[] RESULT_FILES = {MARKER, "RoiSet.zip", "results.csv", "class_summary.csv",
		"preprocessing.csv", "summary.json", "labels.tif", "overlay.png", "report.html", "size_distributions.png",
		"snr.png"};

	private ResultsDisplay() {
	}

	/**
	 * Adds the crystals of {@code folder} to the ROI Manager (after emptying it when
	 * {@code replace}) and shows the tables. Returns the number of crystals added.
	 */
	static int show(ImagePlus image, File folder, boolean replace) throws IOException {
		ResultsTable results = ResultsTable.open(new File(folder, "results.csv").getPath());
		ResultsTable summary = ResultsTable.open(new File(folder, "class_summary.csv").getPath());
		ResultsTable preprocessing = ResultsTable.open(new File(folder, "preprocessing.csv").getPath());
		logPreprocessing(preprocessing);
		if (GraphicsEnvironment.isHeadless()) { // no ROI Manager or table windows without a display
			logLegend(summary, results.size(), image.getTitle());
			return results.size();
		}
		RoiManager manager = RoiManager.getRoiManager();
		if (replace) manager.reset();
		int before = manager.getCount();
		File roiSet = new File(folder, "RoiSet.zip");
		if (!manager.runCommand("Open", roiSet.getPath()))
			throw new IOException("ImageJ could not open " + roiSet);
		int added = manager.getCount() - before;
		if (added != results.size())
			throw new IOException("the ROI set holds " + added + " crystals but the results table " + results.size());
		results.show(RESULTS_TITLE);
		summary.show(SUMMARY_TITLE);
		preprocessing.show(PREPROCESSING_TITLE);
		if (image.getWindow() != null) manager.runCommand(image, "Show All");
		logLegend(summary, added, image.getTitle());
		return added;
	}

	private static void logPreprocessing(ResultsTable steps) {
		StringBuilder line = new StringBuilder("SNR after preprocessing:");
		for (int row = 0; row < steps.size(); row++) {
			String step = steps.getStringValue("Step", row);
			if (steps.getValue("Applied", row) > 0 || "input".equals(step))
				line.append(String.format(" %s %.1f dB,", step, steps.getValue("SNR_dB", row)));
			else
				line.append(String.format(" %s skipped,", step));
		}
		Settings.log(line.substring(0, line.length() - 1));
		for (int row = 0; row < steps.size(); row++)
			if (steps.getStringValue("Note", row).startsWith("Noise2Void skipped"))
				Settings.log("  " + steps.getStringValue("Note", row));
	}

	private static void logLegend(ResultsTable summary, int crystals, String title) {
		Settings.log(crystals + " crystals in " + title);
		for (int row = 0; row < summary.size(); row++) {
			String colour = summary.getStringValue("Colour", row);
			Settings.log(String.format("  %-6s %-36s %5d  (%.1f %%)  outline %s", summary.getStringValue("Class", row),
				summary.getStringValue("Name", row), (int) summary.getValue("Count", row),
				100 * summary.getValue("Fraction", row), colour));
		}
	}

	/**
	 * Copies the result files of {@code folder} to {@code destination}, replacing it only when complete, and
	 * only if it is a result folder that holds nothing but result files: no one else's folder is ever deleted.
	 */
	static void save(File folder, File destination) throws IOException {
		File parent = destination.getAbsoluteFile().getParentFile();
		if (!parent.isDirectory() && !parent.mkdirs()) throw new IOException("cannot create " + parent);
		checkReplaceable(destination);
		// not named like the Python side's ".<name>.partial-<pid>", which a batch starting may clean up
		Path partial = Files.createTempDirectory(parent.toPath(), "." + destination.getName() + ".saving-");
		try {
			for (String name : RESULT_FILES) {
				File file = new File(folder, name);
				if (file.isFile()) Files.copy(file.toPath(), partial.resolve(name));
			}
			if (destination.exists()) deleteTree(destination);
			Files.move(partial, destination.toPath(), StandardCopyOption.ATOMIC_MOVE);
		} finally {
			if (Files.exists(partial)) deleteTree(partial.toFile());
		}
	}

	private static void checkReplaceable(File destination) throws IOException {
		if (!destination.exists()) return;
		String choose = ": choose another folder to save to, or rename or move it away";
		if (!destination.isDirectory() || !new File(destination, MARKER).isFile())
			throw new IOException(destination + " exists and was not written by MicroCrystalNet (it has no " + MARKER
				+ " file); it is never replaced" + choose);
		List<String> known = Arrays.asList(RESULT_FILES);
		String[] names = destination.list();
		for (String name : names == null ? new String[0] : names)
			if (!known.contains(name))
				throw new IOException(destination + " holds " + name + ", which MicroCrystalNet did not write and "
					+ "replacing the folder would delete" + choose);
	}

	static void deleteTree(File file) {
		File[] children = file.listFiles();
		if (children != null) for (File child : children)
			deleteTree(child);
		if (!file.delete() && file.exists()) IJ.log("MicroCrystalNet: could not delete " + file);
	}

	/** The stroke colour of a ROI as #RRGGBB, for tests and macros. */
	public static String strokeColour(Roi roi) {
		Color colour = roi.getStrokeColor();
		return colour == null ? "" : String.format("#%02X%02X%02X", colour.getRed(), colour.getGreen(), colour.getBlue());
	}
}
