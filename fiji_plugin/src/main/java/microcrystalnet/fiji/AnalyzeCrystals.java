package microcrystalnet.fiji;

import ij.IJ;
import ij.ImagePlus;
import ij.Macro;
import ij.WindowManager;
import ij.gui.GenericDialog;
import ij.macro.Interpreter;
import ij.plugin.PlugIn;
import ij.plugin.frame.Recorder;

import java.awt.Checkbox;
import java.awt.Choice;
import java.awt.GraphicsEnvironment;
import java.awt.TextField;
import java.awt.event.ActionEvent;
import java.awt.event.ActionListener;
import java.io.File;
import java.util.Locale;
import java.util.Objects;

/**
 * Plugins &gt; MicroCrystalNet &gt; Analyze Crystals...: segment, classify and measure every
 * crystal of the current SEM image with the Python backend, and show the crystals in the ROI
 * Manager (named and coloured by class), on the image's overlay with a class legend, or as a
 * label image ({@link Outputs}), with a Results and a Summary table (and, on request, in
 * ImageJ's own Results table).
 *
 * <p>Dialog and macro take the same path: every field is recorded by the macro recorder, and
 * {@code run("Analyze Crystals...", "min_crystal_area=0.25 ...")} replays it. In a macro, an
 * image that cannot be analysed is reported in the Log and the macro goes on; the message is
 * also returned by {@code call("microcrystalnet.fiji.AnalyzeCrystals.lastError")}.
 */
public class AnalyzeCrystals implements PlugIn {

	static final String TITLE = "MicroCrystalNet";
	static final String RESTORE_DEFAULTS = "Restore defaults";

	/** Error dialogs: at most this many characters a line, fewer on a screen too narrow for them. */
	static final int MAX_COLUMNS = 100;
	static final int MIN_COLUMNS = 40;
	static final int WIDEST_CHARACTER_PX = 12;
	static final int SCREEN_MARGIN_PX = 160;

	/** The crystal size that asks for an automatic one (the dialog's 0), to {@link #settingsJson}. */
	static final Double AUTOMATIC_SIZE = 0.0;

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
		// in a macro, what its options leave out takes the defaults, never what a dialog last remembered:
		// a recorded line replays the same wherever it runs
		boolean macro = Macro.getOptions() != null;
		DialogValues.renameLegacyModelKey();
		DialogValues last = macro ? DialogValues.defaults() : DialogValues.remembered();
		CrystalSizeUnit sizeUnit = new CrystalSizeUnit(image);
		GenericDialog dialog = new GenericDialog("MicroCrystalNet: Analyze Crystals");
		dialog.addFileField("Classifier", last.model, 24);
		dialog.addNumericField("Unclear_below", last.unclearBelow, 2, 6, "probability");
		dialog.addNumericField("Min_crystal_area", last.minArea, 3, 8, "um^2");
		dialog.addNumericField("Max_crystal_area", last.maxArea, 3, 8, "um^2");
		dialog.addNumericField("Crystal_size", sizeUnit.shown(last), 3, 8, sizeUnit.name + " (0: automatic)");
		dialog.addChoice("Crystals", Defaults.choices("segment.crystal_contrast"), last.crystalContrast);
		dialog.addCheckbox("Exclude_crystals_on_border", last.excludeBorder);
		dialog.addCheckbox("Exclude_SEM_data_bar", last.excludeDataBar);
		dialog.addStringField("Preprocessing", last.steps, 32);
		dialog.addFileField("N2V_model", last.n2vModel, 32);
		dialog.addChoice("Segmenter", segmenters(), last.segmenter);
		dialog.addFileField("Segmenter_model", last.segmenterModel, 32);
		dialog.addFileField("Settings_file", last.settingsFile, 32);
		dialog.addChoice("ROI_Manager", new String[] {DialogValues.ADD, DialogValues.REPLACE}, last.roiManager);
		dialog.addChoice("Outputs", Outputs.CHOICES, last.outputs);
		dialog.addCheckbox("Fill_ImageJ_Results_table", last.fillResults);
		dialog.addDirectoryField("Save_results_to", last.saveTo, 32);
		dialog.addMessage("Areas in um^2 apply when the image is calibrated; without calibration 10 nm/px is assumed for them.\n"
			+ "Crystal size: the typical crystal diameter (0: 2 um on calibrated images unless the crystals look far\n"
			+ "from that, else estimated). Help explains every field; the fields override the settings file.");
		if (!macro && !GraphicsEnvironment.isHeadless())
			dialog.addButton(RESTORE_DEFAULTS, new ActionListener() {
				@Override
				public void actionPerformed(ActionEvent event) {
					show(dialog, DialogValues.defaults(), sizeUnit);
				}
			});
		dialog.addHelp(DialogHelp.html());
		if (!confirmed(dialog)) return;
		DialogValues chosen = new DialogValues();
		chosen.model = dialog.getNextString().trim();
		chosen.unclearBelow = dialog.getNextNumber();
		chosen.minArea = dialog.getNextNumber();
		chosen.maxArea = dialog.getNextNumber();
		double crystalSize = dialog.getNextNumber();
		chosen.crystalContrast = dialog.getNextChoice();
		chosen.excludeBorder = dialog.getNextBoolean();
		chosen.excludeDataBar = dialog.getNextBoolean();
		chosen.steps = dialog.getNextString().trim();
		chosen.n2vModel = dialog.getNextString().trim();
		chosen.segmenter = dialog.getNextChoice();
		chosen.segmenterModel = dialog.getNextString().trim();
		chosen.settingsFile = dialog.getNextString().trim();
		chosen.roiManager = dialog.getNextChoice();
		chosen.outputs = dialog.getNextChoice();
		chosen.fillResults = dialog.getNextBoolean();
		chosen.saveTo = dialog.getNextString().trim();
		Double givenMinArea = givenInMacro("min_crystal_area", chosen.minArea);
		Double givenMaxArea = givenInMacro("max_crystal_area", chosen.maxArea);
		if (dialog.invalidNumber() || !(chosen.minArea >= 0) || !(chosen.maxArea > 0)
			|| givenMinArea != null && givenMaxArea != null && !(chosen.maxArea > chosen.minArea)) {
			fail("The crystal area limits must be numbers with 0 <= minimum < maximum.");
			return;
		}
		if (!(chosen.unclearBelow >= 0 && chosen.unclearBelow <= 1)) {
			fail("Unclear below must be a probability between 0 and 1.");
			return;
		}
		if (!(crystalSize >= 0)) {
			fail("The crystal size must be a diameter of 0 (automatic) or more.");
			return;
		}
		sizeUnit.keep(chosen, crystalSize, last);
		if (!chosen.settingsFile.isEmpty() && !new File(chosen.settingsFile).isFile()) {
			fail("The settings file " + chosen.settingsFile + " does not exist.");
			return;
		}
		if (!chosen.n2vModel.isEmpty() && !new File(chosen.n2vModel).isFile()) {
			fail("The Noise2Void model " + chosen.n2vModel + " does not exist.");
			return;
		}
		if (!macro) chosen.remember();
		// 0 (automatic), given, overrides a size in the settings file as any other field does
		boolean sizeGiven = given("crystal_size");
		Double crystalSizeUm = !sizeGiven ? null : crystalSize == 0 ? AUTOMATIC_SIZE
			: sizeUnit.calibrated ? chosen.crystalSizeUm : null;
		Double crystalSizePx = !sizeGiven ? null : crystalSize == 0 ? AUTOMATIC_SIZE
			: !sizeUnit.calibrated ? chosen.crystalSizePx : null;
		String settings = settingsJson(chosen.model, givenInMacro("unclear_below", chosen.unclearBelow), givenMinArea,
			givenMaxArea, crystalSizeUm, crystalSizePx, given("crystals") ? chosen.crystalContrast : null,
			chosen.excludeBorder, chosen.excludeDataBar, chosen.steps,
			chosen.n2vModel, chosen.segmenter, given("segmenter_model") ? chosen.segmenterModel : "", chosen.settingsFile);
		analyze(image, settings, DialogValues.REPLACE.equals(chosen.roiManager), Outputs.of(chosen.outputs),
			chosen.fillResults, chosen.saveTo);
	}

	/** Default, then the backend's segmenters (settings segment.backend) as the dialog names them. */
	public static String[] segmenters() {
		String[] backends = Defaults.choices("segment.backend");
		String[] names = new String[backends.length + 1];
		names[0] = DialogValues.DEFAULT_SEGMENTER;
		for (int index = 0; index < backends.length; index++)
			names[index + 1] = "sam".equals(backends[index]) ? "SAM"
				: backends[index].substring(0, 1).toUpperCase(Locale.ROOT) + backends[index].substring(1);
		return names;
	}

	/** Puts {@code values} into the fields of an open {@code dialog} (Restore defaults). */
	private static void show(GenericDialog dialog, DialogValues values, CrystalSizeUnit sizeUnit) {
		String[] texts = {values.model, values.steps, values.n2vModel, values.segmenterModel, values.settingsFile,
			values.saveTo};
		for (int index = 0; index < texts.length; index++)
			((TextField) dialog.getStringFields().get(index)).setText(texts[index]);
		double[] numbers = {values.unclearBelow, values.minArea, values.maxArea, sizeUnit.shown(values)};
		int[] digits = {2, 3, 3, 3};
		for (int index = 0; index < numbers.length; index++)
			((TextField) dialog.getNumericFields().get(index)).setText(IJ.d2s(numbers[index], digits[index]));
		((Checkbox) dialog.getCheckboxes().get(0)).setState(values.excludeBorder);
		((Checkbox) dialog.getCheckboxes().get(1)).setState(values.excludeDataBar);
		((Checkbox) dialog.getCheckboxes().get(2)).setState(values.fillResults);
		((Choice) dialog.getChoices().get(0)).select(values.crystalContrast);
		((Choice) dialog.getChoices().get(1)).select(values.segmenter);
		((Choice) dialog.getChoices().get(2)).select(values.roiManager);
		((Choice) dialog.getChoices().get(3)).select(values.outputs);
	}

	/**
	 * The unit the Crystal_size field is in: the image's length unit when it has a pixel size
	 * (the value then kept in micrometres), else pixels.
	 */
	private static final class CrystalSizeUnit {
		final boolean calibrated;
		final String name;
		final double perMicrometre;

		CrystalSizeUnit(ImagePlus image) {
			calibrated = FileCalibration.hasPixelSize(image);
			name = calibrated ? image.getCalibration().getUnit() : "px";
			perMicrometre = calibrated ? ResultsDisplay.unitsPerMicrometre(name) : 1;
		}

		double shown(DialogValues values) {
			return calibrated ? values.crystalSizeUm * perMicrometre : values.crystalSizePx;
		}

		/** {@code chosen} with the size of the field; the size in the other unit stays as {@code last} had it. */
		void keep(DialogValues chosen, double size, DialogValues last) {
			chosen.crystalSizeUm = calibrated ? size / perMicrometre : last.crystalSizeUm;
			chosen.crystalSizePx = calibrated ? last.crystalSizePx : size;
		}
	}

	/**
	 * {@code value}, or null in a macro whose options leave {@code key} out: the value then comes
	 * from the settings file, else from the backend's defaults (so a batch macro can take its area
	 * limits from a settings file). A dialog's fields always count.
	 */
	private static Double givenInMacro(String key, double value) {
		return given(key) ? Double.valueOf(value) : null;
	}

	/** Whether the field {@code key} counts: always in the dialog; in a macro if its options give it. */
	private static boolean given(String key) {
		String options = Macro.getOptions();
		return options == null || Macro.getValue(options, key, null) != null;
	}

	/**
	 * The analysis settings of the dialog's fields as the JSON of microcrystalnet.config.AnalysisConfig;
	 * a null number is left out (the settings file's or the default value applies), and so is an
	 * empty segmenter model and a null crystal contrast. A crystal size in micrometres or pixels clears
	 * the other one; {@link #AUTOMATIC_SIZE} (0) in either clears both (the size is estimated).
	 */
	public static String settingsJson(String model, Double unclearBelow, Double minArea, Double maxArea,
		Double crystalSizeUm, Double crystalSizePx, String crystalContrast, boolean excludeBorder,
		boolean excludeDataBar, String steps,
		String n2vModel, String segmenter, String segmenterModel, String settingsFile) {
		String backend = DialogValues.DEFAULT_SEGMENTER.equals(segmenter) ? "" : String.format(", \"backend\": \"%s\"",
			segmenter.toLowerCase(Locale.ROOT));
		String learned = segmenterModel.isEmpty() ? "" : String.format(", \"learned\": {\"model\": \"%s\"}",
			quoted(segmenterModel));
		boolean automaticSize = Objects.equals(crystalSizeUm, AUTOMATIC_SIZE)
			|| Objects.equals(crystalSizePx, AUTOMATIC_SIZE);
		String crystalSize = automaticSize ? "\"crystal_size_um\": null, \"crystal_size_px\": null, "
			: crystalSizeUm != null
			? member("crystal_size_um", crystalSizeUm, ", ") + "\"crystal_size_px\": null, "
			: crystalSizePx != null ? member("crystal_size_px", crystalSizePx, ", ") + "\"crystal_size_um\": null, " : "";
		String contrast = crystalContrast == null ? ""
			: String.format("\"crystal_contrast\": \"%s\", ", quoted(crystalContrast));
		String base = settingsFile.isEmpty() ? "" : String.format("\"extends\": \"%s\", ", quoted(settingsFile));
		return String.format(Locale.ROOT, "{%s%s, \"input\": {\"exclude_data_bar\": %b}, \"segment\": {%s%s%s%s"
			+ "\"exclude_border\": %b%s%s}, \"classify\": {\"model\": \"%s\"%s}}", base,
			preprocessingJson(steps, n2vModel), excludeDataBar, member("min_crystal_area_um2", minArea, ", "),
			member("max_crystal_area_um2", maxArea, ", "), crystalSize, contrast, excludeBorder, backend, learned,
			quoted(model),
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

	private void analyze(ImagePlus image, String settings, boolean replace, Outputs outputs, boolean fillResults,
		String saveTo) {
		File folder = null;
		long started = System.nanoTime();
		try {
			Backend backend = Settings.backend();
			folder = new File(backend.analyze(image, settings, !saveTo.isEmpty(), Progress.inStatusBar()));
			int crystals = ResultsDisplay.show(image, folder, replace, outputs, fillResults);
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

	/**
	 * Shows {@code dialog}; false when the user cancelled it, and then the macro recorder forgets the
	 * command (a cancelled run is not recorded).
	 */
	static boolean confirmed(GenericDialog dialog) {
		dialog.showDialog();
		if (!dialog.wasCanceled()) return true;
		Recorder.disableCommandRecording();
		return false;
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
	 * {@link #lastError()}, and an ImageJ started to run the macro ({@code ImageJ -batch macro},
	 * which exits when the macro ends, always with status 0) exits with status 1 if something
	 * failed. Nothing else is ever ended: an ImageJ with its window, a Python session that hosts
	 * ImageJ (pyimagej, 'microcrystalnet imagej') or a script that runs the macro read lastError.
	 */
	public static String endBatch(String failures) {
		lastError = failures == null ? "" : failures.trim();
		if (!lastError.isEmpty() && IJ.getInstance() == null && BackendRegistry.inProcess() == null
			&& Interpreter.isBatchMode() && runByImageJsBatchOption()) {
			System.out.flush();
			System.exit(1);
		}
		return "";
	}

	/**
	 * Whether this thread runs the macro that ImageJ's own main method was started with (the
	 * {@code -batch} option): ImageJ.main is then on its stack, as in no host that embeds ImageJ.
	 */
	private static boolean runByImageJsBatchOption() {
		for (StackTraceElement frame : Thread.currentThread().getStackTrace())
			if ("ij.ImageJ".equals(frame.getClassName()) && "main".equals(frame.getMethodName())) return true;
		return false;
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
