package microcrystalnet.fiji;

import ij.IJ;
import ij.ImagePlus;
import ij.Macro;
import ij.WindowManager;
import ij.gui.GenericDialog;
import ij.macro.Interpreter;
import ij.plugin.PlugIn;
import ij.plugin.frame.Recorder;

import java.io.File;
import java.util.Locale;

/**
 * Plugins &gt; MicroCrystalNet &gt; Analyze Crystals...: segment, classify and measure every
 * crystal of the current SEM image with the Python backend, and show the crystals in the ROI
 * Manager (named and coloured by class) with a Results and a Summary table.
 *
 * <p>Dialog and macro take the same path: every field is recorded by the macro recorder, and
 * {@code run("Analyze Crystals...", "min_crystal_area=0.25 ...")} replays it. In a macro, an
 * image that cannot be analysed is reported in the Log and the macro goes on; the message is
 * also returned by {@code call("microcrystalnet.fiji.AnalyzeCrystals.lastError")}.
 */
public class AnalyzeCrystals implements PlugIn {

	static final String TITLE = "MicroCrystalNet";
	static final String ADD = "Add to existing ROIs";
	static final String REPLACE = "Replace existing ROIs";
	static final String[] SEGMENTERS = {"Default", "Watershed", "SAM"};

	/** Error dialogs: at most this many characters a line, fewer on a screen too narrow for them. */
	static final int MAX_COLUMNS = 100;
	static final int MIN_COLUMNS = 40;
	static final int WIDEST_CHARACTER_PX = 12;
	static final int SCREEN_MARGIN_PX = 160;

	private static volatile String lastError = "";

	/** The error of the last MicroCrystalNet command, or an empty string if it succeeded (for macros). */
	public static String lastError() {
		return lastError;
	}

	@Override
	public void run(String arg) {
		clearError();
		ImagePlus image = currentSingleImage();
		if (image == null) return;
		GenericDialog dialog = new GenericDialog("MicroCrystalNet: Analyze Crystals");
		dialog.addStringField("Model", Settings.model(), 24);
		dialog.addNumericField("Unclear_below", 0.5, 2, 6, "probability");
		dialog.addNumericField("Min_crystal_area", 0.25, 3, 8, "um^2");
		dialog.addNumericField("Max_crystal_area", 40, 3, 8, "um^2");
		dialog.addCheckbox("Exclude_crystals_on_border", false);
		dialog.addCheckbox("Exclude_SEM_data_bar", true);
		dialog.addStringField("Preprocessing", "nlm,n2v,unsharp,opening,closing", 32);
		dialog.addStringField("N2V_model", "", 32);
		dialog.addChoice("Segmenter", SEGMENTERS, SEGMENTERS[0]);
		dialog.addStringField("Settings_file", "", 32);
		dialog.addChoice("ROI_Manager", new String[] {ADD, REPLACE}, ADD);
		dialog.addStringField("Save_results_to", "", 32);
		dialog.addMessage("Unclear below: a crystal whose most probable class is less probable than this is labelled 'unclear' (0: never).\n"
			+ "Preprocessing: steps in order from nlm, n2v, unsharp, opening, closing (empty: none).\n"
			+ "N2V model: a Noise2Void model for the n2v step (without one that step is skipped).\n"
			+ "Segmenter: Default takes the settings file's, else the watershed; SAM is the Segment Anything Model.\n"
			+ "Settings file: optional JSON settings, e.g. from 'microcrystalnet tune-sam'; the fields here override it.\n"
			+ "Save results to: an optional folder; the results of this image go to <folder>/<image name>/.\n"
			+ "Areas in um^2 apply when the image is calibrated; without calibration 10 nm/px is assumed for them.");
		dialog.showDialog();
		if (dialog.wasCanceled()) {
			Recorder.disableCommandRecording();
			return;
		}
		String model = dialog.getNextString().trim();
		double unclearBelow = dialog.getNextNumber();
		double minArea = dialog.getNextNumber();
		double maxArea = dialog.getNextNumber();
		boolean excludeBorder = dialog.getNextBoolean();
		boolean excludeDataBar = dialog.getNextBoolean();
		String steps = dialog.getNextString().trim();
		String n2vModel = dialog.getNextString().trim();
		String segmenter = dialog.getNextChoice();
		String settingsFile = dialog.getNextString().trim();
		boolean replace = REPLACE.equals(dialog.getNextChoice());
		String saveTo = dialog.getNextString().trim();
		Double givenMinArea = givenInMacro("min_crystal_area", minArea);
		Double givenMaxArea = givenInMacro("max_crystal_area", maxArea);
		if (dialog.invalidNumber() || !(minArea >= 0) || !(maxArea > 0)
			|| givenMinArea != null && givenMaxArea != null && !(maxArea > minArea)) {
			fail("The crystal area limits must be numbers with 0 <= minimum < maximum.");
			return;
		}
		if (!(unclearBelow >= 0 && unclearBelow <= 1)) {
			fail("Unclear below must be a probability between 0 and 1.");
			return;
		}
		if (!settingsFile.isEmpty() && !new File(settingsFile).isFile()) {
			fail("The settings file " + settingsFile + " does not exist.");
			return;
		}
		if (!n2vModel.isEmpty() && !new File(n2vModel).isFile()) {
			fail("The Noise2Void model " + n2vModel + " does not exist.");
			return;
		}
		String settings = settingsJson(model, givenInMacro("unclear_below", unclearBelow), givenMinArea, givenMaxArea,
			excludeBorder, excludeDataBar, steps, n2vModel, segmenter, settingsFile);
		analyze(image, settings, replace, saveTo);
	}

	/**
	 * {@code value}, or null in a macro whose options leave {@code key} out: the value then comes
	 * from the settings file, else from the backend's defaults (so a batch macro can take its area
	 * limits from a settings file). A dialog's fields always count.
	 */
	private static Double givenInMacro(String key, double value) {
		String options = Macro.getOptions();
		return options == null || Macro.getValue(options, key, null) != null ? Double.valueOf(value) : null;
	}

	/**
	 * The analysis settings of the dialog's fields as the JSON of microcrystalnet.config.AnalysisConfig;
	 * a null number is left out (the settings file's or the default value applies).
	 */
	public static String settingsJson(String model, Double unclearBelow, Double minArea, Double maxArea,
		boolean excludeBorder, boolean excludeDataBar, String steps, String n2vModel, String segmenter,
		String settingsFile) {
		String backend = "Default".equals(segmenter) ? "" : String.format(", \"backend\": \"%s\"",
			segmenter.toLowerCase(Locale.ROOT));
		String base = settingsFile.isEmpty() ? "" : String.format("\"extends\": \"%s\", ", quoted(settingsFile));
		return String.format(Locale.ROOT, "{%s%s, \"input\": {\"exclude_data_bar\": %b}, \"segment\": {%s%s"
			+ "\"exclude_border\": %b%s}, \"classify\": {\"model\": \"%s\"%s}}", base,
			preprocessingJson(steps, n2vModel), excludeDataBar, member("min_crystal_area_um2", minArea, ", "),
			member("max_crystal_area_um2", maxArea, ", "), excludeBorder, backend, quoted(model),
			unclearBelow == null ? "" : ", " + member("unclear_below", unclearBelow, ""));
	}

	/** {@code "key": value} followed by {@code separator}, or nothing for a null value. */
	private static String member(String key, Double value, String separator) {
		return value == null ? "" : "\"" + key + "\": " + Double.toString(value) + separator;
	}

	private static String preprocessingJson(String steps, String n2vModel) {
		StringBuilder list = new StringBuilder();
		for (String step : steps.split(",")) {
			if (step.trim().isEmpty()) continue;
			if (list.length() > 0) list.append(", ");
			list.append('"').append(quoted(step.trim())).append('"');
		}
		String model = n2vModel.isEmpty() ? "" : String.format(", \"n2v_model\": \"%s\"", quoted(n2vModel));
		return String.format("\"preprocess\": {\"steps\": [%s]%s}", list, model);
	}

	private static String quoted(String text) {
		return text.replace("\\", "\\\\").replace("\"", "\\\"");
	}

	private void analyze(ImagePlus image, String settings, boolean replace, String saveTo) {
		File folder = null;
		long started = System.nanoTime();
		try {
			Backend backend = Settings.backend();
			folder = new File(backend.analyze(image, settings, !saveTo.isEmpty(), Progress.inStatusBar()));
			int crystals = ResultsDisplay.show(image, folder, replace);
			if (!saveTo.isEmpty()) ResultsDisplay.save(folder, new File(saveTo, baseName(image.getTitle())));
			IJ.showStatus(String.format(Locale.ROOT, "MicroCrystalNet: %d crystals in %.1f s (%s)", crystals,
				(System.nanoTime() - started) / 1e9, backend.describe()));
		} catch (CancelledException cancelled) {
			Recorder.disableCommandRecording(); // a recording replays what the user finished, not what was stopped
			lastError = "cancelled";
			IJ.showStatus("MicroCrystalNet: cancelled");
		} catch (Exception error) {
			fail(image.getTitle() + ": " + (error.getMessage() != null ? error.getMessage() : error.toString()));
		} finally {
			IJ.showProgress(1.0);
			if (folder != null) ResultsDisplay.deleteTree(folder.getParentFile());
		}
	}

	/** The image in front if it is one 2D image; otherwise null, after saying why (see {@link #fail}). */
	static ImagePlus currentSingleImage() {
		ImagePlus image = WindowManager.getCurrentImage();
		if (image == null) {
			fail("There is no image open. Open an SEM image first.");
			return null;
		}
		if (image.getStackSize() > 1) {
			fail(image.getTitle() + " is a stack of " + image.getStackSize() + " images; MicroCrystalNet works on one "
				+ "2D SEM image.\nDuplicate the slice to use (Image > Duplicate...) and run it on that.");
			return null;
		}
		return image;
	}

	static String baseName(String title) {
		int dot = title.lastIndexOf('.');
		return dot > 0 ? title.substring(0, dot) : title;
	}

	/**
	 * Called by a batch macro at its end with what failed (empty: nothing): that becomes
	 * {@link #lastError()}, and an ImageJ run as {@code ImageJ -batch} (no ImageJ window, no
	 * Python session hosting it) exits with status 1 if something failed: ImageJ itself always
	 * exits with 0. A Python session that hosts ImageJ reads lastError instead.
	 */
	public static String endBatch(String failures) {
		lastError = failures == null ? "" : failures.trim();
		if (!lastError.isEmpty() && IJ.getInstance() == null && BackendRegistry.inProcess() == null
			&& Interpreter.isBatchMode()) {
			System.out.flush();
			System.exit(1);
		}
		return "";
	}

	static void clearError() {
		lastError = "";
	}

	/** In a macro: a Log line and the macro goes on; interactively: an error dialog that fits the screen. */
	static void fail(String message) {
		lastError = message;
		if (Macro.getOptions() != null || Interpreter.isBatchMode()) Settings.log("ERROR " + message);
		else IJ.error(TITLE, wrapped(message, Math.max(MIN_COLUMNS, Math.min(MAX_COLUMNS,
			(IJ.getScreenSize().width - SCREEN_MARGIN_PX) / WIDEST_CHARACTER_PX))));
	}

	/**
	 * {@code message} with every line broken at spaces to at most {@code columns} characters; a
	 * longer word (a path, a URL) is broken after a '/' where it can be, else anywhere. ImageJ's
	 * message dialog is as wide as its longest line: unbroken, a long path pushed the OK button
	 * off the screen.
	 */
	public static String wrapped(String message, int columns) {
		StringBuilder text = new StringBuilder();
		for (String line : message.split("\n", -1)) {
			if (line.length() <= columns) { // as it is, indentation included
				text.append(line).append('\n');
				continue;
			}
			StringBuilder current = new StringBuilder();
			for (String word : line.split(" ")) {
				while (word.length() > columns) {
					int cut = word.lastIndexOf('/', columns - 1) + 1;
					if (cut < columns / 2) cut = columns;
					if (current.length() > 0) text.append(current).append('\n');
					current.setLength(0);
					text.append(word, 0, cut).append('\n');
					word = word.substring(cut);
				}
				if (current.length() > 0 && current.length() + 1 + word.length() > columns) {
					text.append(current).append('\n');
					current.setLength(0);
				}
				if (current.length() > 0) current.append(' ');
				current.append(word);
			}
			text.append(current).append('\n');
		}
		return text.substring(0, text.length() - 1);
	}
}
