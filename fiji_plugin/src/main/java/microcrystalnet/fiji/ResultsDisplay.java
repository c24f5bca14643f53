package microcrystalnet.fiji;

import ij.IJ;
import ij.ImagePlus;
import ij.gui.Roi;
import ij.measure.Calibration;
import ij.measure.ResultsTable;
import ij.plugin.frame.Recorder;
import ij.plugin.frame.RoiManager;

import java.awt.Color;
import java.awt.GraphicsEnvironment;
import java.io.File;
import java.io.IOException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * Shows a result folder in ImageJ: crystals in the ROI Manager, the Results and Summary tables,
 * a colour legend in the Log. Both backends end here, so both show the same thing.
 */
public final class ResultsDisplay {

	static final String RESULTS_TITLE = "MicroCrystalNet Results";
	static final String SUMMARY_TITLE = "MicroCrystalNet Summary";
	static final String PREPROCESSING_TITLE = "MicroCrystalNet Preprocessing";
	/** ImageJ's own table (Analyze &gt; Measure's), filled on request so that ImageJ's tools work on the crystals. */
	static final String STANDARD_RESULTS_TITLE = "Results";
	static final String UNIT_COLUMN = "Unit";
	static final String PIXELS = "px";
	/** The marker of a result folder (see microcrystalnet.io.result_folder): only such folders are replaced. */
	static final String MARKER = ".microcrystalnet-result";
	/** Measurement columns first, in this order (ImageJ's names; see microcrystalnet.measure), then the class. */
	public static final String[] RESULTS_FIRST = {"Area", "Perim.", "Feret", "MinFeret", "FeretAngle", "Major", "Minor",
		"Angle", "Circ.", "AR", "Round", "Solidity", "Mean", "X", "Y", "Class", "Confidence"};
	/** Columns after the class probabilities. */
	static final String[] RESULTS_LAST = {"Crystal", "Segmenter"};
	/**
	 * Lengths and areas of the backend's tables: microcrystalnet.measure's LENGTH_COLUMNS and
	 * AREA_COLUMNS, and the class summary's means.
	 */
	public static final List<String> LENGTHS = Arrays.asList("X", "Y", "Perim.", "Major", "Minor", "Feret", "MinFeret",
		"MeanFeret");
	public static final List<String> AREAS = Arrays.asList("Area", "MeanArea");
	static final int SIGNIFICANT_DIGITS = 4;
	static final int MAX_DECIMALS = 9;
	static final String MICROMETRE = "\u00b5m";
	static final String[] RESULT_FILES = {MARKER, "RoiSet.zip", "results.csv", "class_summary.csv",
		"preprocessing.csv", "summary.json", "labels.tif", "overlay.png", "report.html", "size_distributions.png",
		"snr.png"};

	private ResultsDisplay() {
	}

	/**
	 * For macros and scripts (e.g. pyimagej): shows a result folder that Analyze Crystals, Batch
	 * Analyze Folder or {@code microcrystalnet analyze/batch} wrote on the current image (the image
	 * it was analysed from), as Analyze Crystals shows its results, adding to what is there (the ROI
	 * Manager and tables are never emptied):
	 * {@code call("microcrystalnet.fiji.ResultsDisplay.showResultFolder", folder, "ROI Manager + Overlay", "true")}.
	 * {@code outputs}: one of the Outputs choices; {@code fillResults}: "true" to fill ImageJ's Results
	 * table too. Returns the number of crystals, or "" after an error (its message in the Log, or a
	 * dialog; {@link AnalyzeCrystals#lastError()}).
	 */
	public static String showResultFolder(String folder, String outputs, String fillResults) {
		AnalyzeCrystals.clearError();
		ImagePlus image = AnalyzeCrystals.currentSingleImage();
		if (image == null) return "";
		if (folder == null || folder.trim().isEmpty()) {
			AnalyzeCrystals.fail("Give the result folder of " + image.getTitle() + ": <output>/<image name>, with "
				+ "results.csv and summary.json.");
			return "";
		}
		File results = new File(folder.trim());
		if (!Arrays.asList(Outputs.CHOICES).contains(outputs)) {
			AnalyzeCrystals.fail("Outputs must be one of: " + String.join(", ", Outputs.CHOICES) + " (got '" + outputs
				+ "').");
			return "";
		}
		if (!new File(results, "results.csv").isFile() || !new File(results, "summary.json").isFile()) {
			AnalyzeCrystals.fail(folder + " is not a MicroCrystalNet result folder (it has no results.csv and "
				+ "summary.json): give the folder of one image's results, OUT/<image name>.");
			return "";
		}
		try {
			Summary about = Summary.read(results);
			if (about.widthPx != null && about.heightPx != null
				&& (about.widthPx != image.getWidth() || about.heightPx != image.getHeight())) {
				AnalyzeCrystals.fail(String.format(Locale.ROOT, "The results in %s are of a %.0f x %.0f px image, but %s "
					+ "is %d x %d px: open the image they are of.", folder, about.widthPx, about.heightPx,
					image.getTitle(), image.getWidth(), image.getHeight()));
				return "";
			}
			return Integer.toString(show(image, results, false, Outputs.of(outputs), Boolean.parseBoolean(fillResults)));
		} catch (IOException error) {
			AnalyzeCrystals.fail(image.getTitle() + ": " + error.getMessage());
			return "";
		}
	}

	/** Shows {@code folder} as the command did before its Outputs choice: ROI Manager and tables. */
	static int show(ImagePlus image, File folder, boolean replace) throws IOException {
		return show(image, folder, replace, Outputs.of(Outputs.DEFAULT), false);
	}

	/**
	 * Shows the crystals of {@code folder} in the {@code outputs} (ROI Manager, overlay, label
	 * image), their rows in the Results and Summary tables, and with {@code fillResults} in
	 * ImageJ's own Results table too. {@code replace}: empty the ROI Manager, the overlay and the
	 * tables first; otherwise (Add mode) the ROI names carry the image title, "scene.tif:0001-RES",
	 * so that several images give unique names, and the tables accumulate (their Image column
	 * tells the images apart) in the unit they have: results in pixels (an image without pixel
	 * size) and in a length unit are never mixed in one table (an IOException says what to do).
	 * Returns the number of crystals.
	 */
	static int show(ImagePlus image, File folder, boolean replace, Outputs outputs, boolean fillResults)
		throws IOException {
		ResultsTable results = ResultsTable.open(new File(folder, "results.csv").getPath());
		ResultsTable summary = ResultsTable.open(new File(folder, "class_summary.csv").getPath());
		ResultsTable preprocessing = ResultsTable.open(new File(folder, "preprocessing.csv").getPath());
		Summary about = Summary.read(folder);
		logPreprocessing(preprocessing);
		String title = image.getTitle();
		for (String notice : about.notices)
			Settings.log(title + ": " + notice);
		FileCalibration.applyTo(image, about);
		// without a display (a headless ImageJ, a script's): no ROI Manager or table windows, but the
		// overlay and ImageJ's own Results table (which macros and scripts read) work
		boolean headless = GraphicsEnvironment.isHeadless();
		TableUnit unit = tableUnit(TableUnit.of(image.getCalibration(), about.inMicrometres()), replace, fillResults);
		File roiSet = new File(folder, "RoiSet.zip");
		if (outputs.roiManager && !headless) addToRoiManager(image, roiSet, results.size(), replace, !outputs.overlay);
		if (outputs.overlay) {
			List<Roi> crystals = ImageOutputs.readRoiSet(roiSet);
			checkCount(crystals.size(), results.size());
			for (Roi crystal : crystals)
				crystal.setName(roiName(title, crystal.getName(), replace));
			ImageOutputs.drawOnOverlay(image, crystals, summary, replace);
		}
		if (outputs.labelImage && !headless) ImageOutputs.showLabelImage(image, folder, results.size());
		String[] labels = new String[results.size()];
		for (int row = 0; row < results.size(); row++)
			labels[row] = roiName(title, results.getStringValue("Name", row), replace);
		List<String> resultColumns = columnOrder(results, RESULTS_FIRST, RESULTS_LAST, "Name");
		if (!headless) {
			ResultsTable shown = shownTable(RESULTS_TITLE, replace);
			appendRows(results, shown, resultColumns, unit, labels, title);
			ResultsTable classes = shownTable(SUMMARY_TITLE, replace);
			appendRows(summary, classes, columnOrder(summary, new String[0], new String[0], UNIT_COLUMN), unit, null,
				null);
			showWithSignificantDigits(shown, RESULTS_TITLE);
			showWithSignificantDigits(classes, SUMMARY_TITLE);
		}
		if (fillResults) {
			ResultsTable standard = ResultsTable.getResultsTable();
			if (replace) standard.reset();
			appendRows(results, standard, resultColumns, unit.withPlainHeadings(), labels, title);
			showWithSignificantDigits(standard, STANDARD_RESULTS_TITLE);
		}
		if (!headless) preprocessing.show(PREPROCESSING_TITLE);
		logLegend(summary, results.size(), title);
		if (headless) Settings.log(title + ": " + headlessNote(outputs, fillResults));
		return results.size();
	}

	/** What a headless ImageJ showed of the results and what it could not, and where to find them. */
	static String headlessNote(Outputs outputs, boolean fillResults) {
		List<String> shown = new ArrayList<String>();
		if (outputs.overlay) shown.add("the crystals are on the image's overlay");
		if (fillResults) shown.add("their rows are in ImageJ's Results table");
		return "headless (no display), so no ROI Manager, label image or MicroCrystalNet tables are shown"
			+ (shown.isEmpty() ? "; choose Outputs: Overlay and Fill ImageJ Results table to have the crystals on the "
				+ "image and in the Results table" : "; " + String.join(", and ", shown))
			+ "; every result is in the files Save results to writes";
	}

	/**
	 * Opens {@code roiSet} in the ROI Manager (emptied first when {@code replace}; in Add mode the
	 * names get the image title in front) and shows them all on the image if {@code showAll}.
	 */
	private static void addToRoiManager(ImagePlus image, File roiSet, int crystals, boolean replace, boolean showAll)
		throws IOException {
		RoiManager manager = RoiManager.getRoiManager();
		if (replace) manager.reset();
		int before = manager.getCount();
		boolean recording = Recorder.record;
		Recorder.record = false; // internal steps (on a temporary file): not for the user's recording to replay
		try {
			// an empty RoiSet.zip (no crystals found) makes the ROI Manager open a modal error dialog, even in a macro
			if (crystals > 0 && !manager.runCommand("Open", roiSet.getPath()))
				throw new IOException("ImageJ could not open " + roiSet);
			checkCount(manager.getCount() - before, crystals);
			if (!replace) for (int index = before; index < manager.getCount(); index++)
				manager.rename(index, roiName(image.getTitle(), manager.getRoi(index).getName(), false));
			if (showAll && image.getWindow() != null) manager.runCommand(image, "Show All");
		} finally {
			Recorder.record = recording;
		}
	}

	private static void checkCount(int rois, int rows) throws IOException {
		if (rois != rows) throw new IOException("the ROI set holds " + rois + " crystals but the results table " + rows);
	}

	/**
	 * The unit the tables get: {@code own}, the results' own; in Add mode the unit of the tables
	 * already shown, to which lengths in another length unit are converted. Results in pixels
	 * cannot join tables in a length unit, nor the reverse: an IOException says what to do.
	 */
	private static TableUnit tableUnit(TableUnit own, boolean replace, boolean fillResults) throws IOException {
		if (replace) return own;
		String table = RESULTS_TITLE;
		String shown = unitOfAreaHeadings(ResultsTable.getResultsTable(RESULTS_TITLE));
		if (shown == null && fillResults) {
			table = "ImageJ Results";
			ResultsTable standard = ResultsTable.getResultsTable();
			if (standard != null && standard.size() > 0 && standard.columnExists(UNIT_COLUMN))
				shown = standard.getStringValue(UNIT_COLUMN, standard.size() - 1);
		}
		boolean shownInPixels = PIXELS.equals(shown);
		Double perMicrometre = unitsPerMicrometre(shown);
		if (!shownInPixels && perMicrometre == null) return own;
		if (shownInPixels && !PIXELS.equals(own.name))
			throw new IOException("its results are in " + own.name + ", but the " + table + " table holds results in "
				+ "pixels (of images without pixel size), and one table cannot mix pixels with " + own.name + ".\n"
				+ "Choose ROI Manager: " + DialogValues.REPLACE + " to start new tables (save the table first to keep "
				+ "it), or close the table.");
		if (!shownInPixels && PIXELS.equals(own.name))
			throw new IOException("it has no pixel size, so its results are in pixels, but the " + table + " table "
				+ "holds lengths in " + shown + ", and one table cannot mix pixels with " + shown + ".\n"
				+ "Set the pixel size in Image > Properties... and run it again, or choose ROI Manager: "
				+ DialogValues.REPLACE + " to start new tables.");
		return new TableUnit(perMicrometre == 1 ? MICROMETRE : shown, perMicrometre, true);
	}

	/** The unit in the "Area (unit^2)" heading of a table with rows, else null. */
	private static String unitOfAreaHeadings(ResultsTable table) {
		if (table == null || table.size() == 0) return null;
		for (String heading : table.getHeadings())
			if (heading.startsWith("Area (") && heading.endsWith("^2)"))
				return heading.substring("Area (".length(), heading.length() - "^2)".length());
		return null;
	}

	/** The ROI name of a crystal: as the backend named it, or with the image title in front (Add mode). */
	private static String roiName(String title, String name, boolean replace) {
		return replace ? name : title + ":" + name;
	}

	/** The table called {@code title} if it is shown and should be added to, else a new one. */
	private static ResultsTable shownTable(String title, boolean replace) {
		ResultsTable shown = replace ? null : ResultsTable.getResultsTable(title);
		return shown != null ? shown : new ResultsTable();
	}

	/**
	 * The headings of {@code table}: those named in {@code first} first, then the others in their
	 * order, then those in {@code last}, except {@code skipped}.
	 */
	private static List<String> columnOrder(ResultsTable table, String[] first, String[] last, String... skipped) {
		List<String> headings = Arrays.asList(table.getHeadings());
		List<String> order = new ArrayList<String>();
		for (String heading : first)
			if (headings.contains(heading)) order.add(heading);
		for (String heading : headings)
			if (!order.contains(heading) && !Arrays.asList(last).contains(heading)
				&& !Arrays.asList(skipped).contains(heading) && !"Label".equals(heading))
				order.add(heading);
		for (String heading : last)
			if (headings.contains(heading)) order.add(heading);
		return order;
	}

	/**
	 * Adds the rows of {@code from} to {@code to}, columns in {@code order}, lengths and areas
	 * converted to {@code unit}, which their headings name (or, for ImageJ's Results table, a
	 * Unit column at the end); {@code labels}: the row labels (null: none); {@code image}: the
	 * value of an Image column at the end (null: none).
	 */
	private static void appendRows(ResultsTable from, ResultsTable to, List<String> order, TableUnit unit, String[] labels,
		String image) {
		List<String> text = new ArrayList<String>();
		for (String heading : order)
			if (isText(from, heading)) text.add(heading);
		for (int row = 0; row < from.size(); row++) {
			to.incrementCounter();
			if (labels != null) to.setLabel(labels[row], to.size() - 1);
			for (String heading : order) {
				int power = LENGTHS.contains(heading) ? 1 : AREAS.contains(heading) ? 2 : 0;
				if (text.contains(heading)) to.addValue(heading, from.getStringValue(heading, row));
				else to.addValue(unit.heading(heading, power), unit.convert(from.getValue(heading, row), power));
			}
			if (image != null) to.addValue("Image", image);
			if (!unit.inHeadings) to.addValue(UNIT_COLUMN, unit.name);
		}
	}

	/** A column of text (a number column's empty cells read "NaN", which is not text). */
	private static boolean isText(ResultsTable table, String heading) {
		for (int row = 0; row < table.size(); row++)
			if (Double.isNaN(table.getValue(heading, row)) && !"NaN".equals(table.getStringValue(heading, row)))
				return true;
		return false;
	}

	/**
	 * Shows {@code table} with enough decimals in each column that its smallest non-zero value
	 * keeps {@value #SIGNIFICANT_DIGITS} significant digits (an area of 0.004123 um^2 is not
	 * shown as 0.004; beyond {@value #MAX_DECIMALS} decimals in scientific notation);
	 * whole-number columns without decimals; probabilities and fractions with
	 * {@value #SIGNIFICANT_DIGITS} decimals (a probability of 3E-7 is 0.0000).
	 */
	static void showWithSignificantDigits(ResultsTable table, String title) {
		for (String heading : table.getHeadings()) {
			int column = table.getColumnIndex(heading);
			if (column < 0 || !table.columnExists(column)) continue;
			if (isProbability(heading)) {
				table.setDecimalPlaces(column, SIGNIFICANT_DIGITS);
				continue;
			}
			double smallest = Double.POSITIVE_INFINITY;
			boolean whole = true;
			for (double value : table.getColumnAsDoubles(column)) {
				if (Double.isNaN(value) || Double.isInfinite(value)) continue;
				if (value != 0) smallest = Math.min(smallest, Math.abs(value));
				whole &= value == Math.rint(value);
			}
			if (whole || Double.isInfinite(smallest)) {
				table.setDecimalPlaces(column, 0);
				continue;
			}
			int decimals = SIGNIFICANT_DIGITS - 1 - (int) Math.floor(Math.log10(smallest));
			// ImageJ: negative decimal places are scientific notation with that many decimals
			table.setDecimalPlaces(column, decimals > MAX_DECIMALS ? 1 - SIGNIFICANT_DIGITS : Math.max(0, decimals));
		}
		table.show(title);
	}

	/** A column of values from 0 to 1: a class probability, the confidence, or a fraction of the crystals. */
	static boolean isProbability(String heading) {
		return heading.startsWith("Prob_") || heading.endsWith("Confidence") || "Fraction".equals(heading);
	}

	/**
	 * The unit the tables show lengths in: the image's (nm, µm, mm, ...) when the results are
	 * calibrated, "px" when they are in pixels.
	 */
	static final class TableUnit {
		final String name;
		/** How many of this unit make one micrometre (1 for pixels: no conversion). */
		final double perMicrometre;
		/** Whether headings name the unit ("Area (nm^2)"); else they are ImageJ's ("Area") and a Unit column does. */
		final boolean inHeadings;

		private TableUnit(String name, double perMicrometre, boolean inHeadings) {
			this.name = name;
			this.perMicrometre = perMicrometre;
			this.inHeadings = inHeadings;
		}

		static TableUnit of(Calibration calibration, boolean resultsInMicrometres) {
			if (!resultsInMicrometres) return new TableUnit(PIXELS, 1, true);
			String unit = calibration.getUnit();
			Double perMicrometre = unitsPerMicrometre(unit);
			if (!calibration.scaled() || perMicrometre == null) return new TableUnit(MICROMETRE, 1, true);
			return new TableUnit(perMicrometre == 1 ? MICROMETRE : unit, perMicrometre, true);
		}

		/** This unit for ImageJ's Results table: headings as ImageJ's measurements have them, and a Unit column. */
		TableUnit withPlainHeadings() {
			return new TableUnit(name, perMicrometre, false);
		}

		String heading(String column, int power) {
			return power == 0 || !inHeadings ? column : column + " (" + name + (power == 2 ? "^2)" : ")");
		}

		double convert(double value, int power) {
			return value * Math.pow(perMicrometre, power);
		}
	}

	/** How many {@code unit} make one micrometre, or null for a unit that is not a length ImageJ images use. */
	public static Double unitsPerMicrometre(String unit) {
		String name = unit == null ? "" : unit.trim().toLowerCase(Locale.ROOT).replace('\u03bc', '\u00b5');
		switch (name) {
			case "pm": return 1e6;
			case "nm": case "nanometer": return 1e3;
			case "um": case "\u00b5m": case "micron": case "microns": case "micrometer": return 1.0;
			case "mm": case "millimeter": return 1e-3;
			case "cm": return 1e-4;
			case "m": case "meter": return 1e-6;
			default: return null;
		}
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
		Path partial = newFolder(parent.toPath(), "." + destination.getName() + ".saving-");
		try {
			for (String name : RESULT_FILES) {
				File file = new File(folder, name);
				if (file.isFile()) Files.copy(file.toPath(), partial.resolve(name));
			}
			// the old results are moved aside, not deleted, until the new ones are in place: a save that
			// fails keeps one of the two whole
			Path previous = destination.exists() ? newFolder(parent.toPath(), "." + destination.getName() + ".previous-")
				: null;
			if (previous != null) Files.move(destination.toPath(), previous, StandardCopyOption.REPLACE_EXISTING);
			try {
				Files.move(partial, destination.toPath(), StandardCopyOption.ATOMIC_MOVE);
			} catch (IOException failed) {
				if (previous != null) Files.move(previous, destination.toPath(), StandardCopyOption.ATOMIC_MOVE);
				throw failed;
			}
			if (previous != null) deleteTree(previous.toFile());
		} finally {
			if (Files.exists(partial)) deleteTree(partial.toFile());
		}
	}

	/**
	 * A new folder {@code prefix<number>} in {@code parent} with the permissions the user's umask
	 * gives (Files.createTempDirectory would make it drwx------, and so the saved results).
	 * Not named like the Python side's ".<name>.partial-<pid>", which a batch starting may clean up.
	 */
	private static Path newFolder(Path parent, String prefix) throws IOException {
		for (int attempt = 0;; attempt++) {
			try {
				return Files.createDirectory(parent.resolve(prefix + Long.toHexString(System.nanoTime())));
			} catch (FileAlreadyExistsException taken) {
				if (attempt > 100) throw taken;
			}
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
