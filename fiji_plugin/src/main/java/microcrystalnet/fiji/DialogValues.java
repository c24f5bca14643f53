package microcrystalnet.fiji;

import ij.Macro;
import ij.Prefs;

import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The values of the Analyze Crystals dialog: the backend's defaults ({@link Defaults}), or the
 * last values the user chose in the dialog, kept in ImageJ's preferences (IJ_Prefs.txt) under
 * {@value #PREFS}&lt;macro key&gt;, as MorphoLibJ keeps its dialogs'.
 *
 * <p>The typical crystal size is kept in micrometres for calibrated images and in pixels for
 * the others (0: automatic), so it means the same on the next image whatever its unit.
 */
final class DialogValues {

	static final String PREFS = "microcrystalnet.analyze.";
	static final String ADD = "Add to existing ROIs";
	static final String REPLACE = "Replace existing ROIs";
	static final String DEFAULT_SEGMENTER = "Default";

	String model;
	double unclearBelow;
	double minArea;
	double maxArea;
	double crystalSizeUm;
	double crystalSizePx;
	String crystalContrast;
	boolean excludeBorder;
	boolean excludeDataBar;
	String steps;
	String n2vModel;
	String segmenter;
	String segmenterModel;
	String settingsFile;
	String roiManager;
	String outputs;
	boolean fillResults;
	String saveTo;

	/**
	 * Macros recorded before the classifier field was called Classifier gave it as {@code model=}.
	 * Their key becomes {@code classifier=} here; and a macro without it no longer has ImageJ read
	 * {@code model=} out of {@code segmenter_model=} or {@code n2v_model=} (to ImageJ an underscore
	 * does not start a key).
	 */
	static void renameLegacyModelKey() {
		String options = Macro.getOptions();
		if (options != null) {
			String renamed = withKeyRenamed(options, "model", "classifier");
			if (!renamed.equals(options)) Macro.setOptions(renamed);
		}
	}

	/** A macro option: a key, then {@code =value} or {@code =[value with spaces]} unless a checkbox. */
	private static final Pattern OPTION = Pattern.compile("(?<=^|\\s)([^\\s=\\[\\]]+)(=(\\[[^\\]]*\\]|\\S*))?");

	/**
	 * Macro {@code options} with the key {@code from} named {@code to}, unless {@code to} is given.
	 * Keys are whole (not the end of another key) and never inside a [bracketed value].
	 */
	static String withKeyRenamed(String options, String from, String to) {
		Matcher option = OPTION.matcher(options);
		int at = -1;
		while (option.find()) {
			if (option.group(1).equals(to)) return options;
			if (at < 0 && option.group(1).equals(from) && option.group(2) != null) at = option.start(1);
		}
		return at < 0 ? options : options.substring(0, at) + to + options.substring(at + from.length());
	}

	/** The backend's defaults; the model is the one chosen in Settings... (by default the backend's). */
	static DialogValues defaults() {
		DialogValues values = new DialogValues();
		values.model = Settings.model();
		values.unclearBelow = Defaults.number("classify.unclear_below");
		values.minArea = Defaults.number("segment.min_crystal_area_um2");
		values.maxArea = Defaults.number("segment.max_crystal_area_um2");
		values.crystalSizeUm = Defaults.number("segment.crystal_size_um");
		values.crystalSizePx = Defaults.number("segment.crystal_size_px");
		values.crystalContrast = Defaults.text("segment.crystal_contrast");
		values.excludeBorder = Defaults.flag("segment.exclude_border");
		values.excludeDataBar = Defaults.flag("input.exclude_data_bar");
		values.steps = Defaults.text("preprocess.steps");
		values.n2vModel = Defaults.text("preprocess.n2v_model");
		values.segmenter = DEFAULT_SEGMENTER;
		values.segmenterModel = Defaults.text("segment.learned.model");
		values.settingsFile = "";
		values.roiManager = ADD;
		values.outputs = Outputs.DEFAULT;
		values.fillResults = false;
		values.saveTo = "";
		return values;
	}

	/** The values last chosen in the dialog; the defaults where there are none. */
	static DialogValues remembered() {
		DialogValues values = defaults();
		values.model = Prefs.get(PREFS + "model", values.model);
		values.unclearBelow = Prefs.get(PREFS + "unclear_below", values.unclearBelow);
		values.minArea = Prefs.get(PREFS + "min_crystal_area", values.minArea);
		values.maxArea = Prefs.get(PREFS + "max_crystal_area", values.maxArea);
		values.crystalSizeUm = Prefs.get(PREFS + "crystal_size_um", values.crystalSizeUm);
		values.crystalSizePx = Prefs.get(PREFS + "crystal_size_px", values.crystalSizePx);
		values.crystalContrast = Prefs.get(PREFS + "crystals", values.crystalContrast);
		values.excludeBorder = Prefs.get(PREFS + "exclude_crystals_on_border", values.excludeBorder);
		values.excludeDataBar = Prefs.get(PREFS + "exclude_sem_data_bar", values.excludeDataBar);
		values.steps = Prefs.get(PREFS + "preprocessing", values.steps);
		values.n2vModel = Prefs.get(PREFS + "n2v_model", values.n2vModel);
		values.segmenter = Prefs.get(PREFS + "segmenter", values.segmenter);
		values.segmenterModel = Prefs.get(PREFS + "segmenter_model", values.segmenterModel);
		values.settingsFile = Prefs.get(PREFS + "settings_file", values.settingsFile);
		values.roiManager = Prefs.get(PREFS + "roi_manager", values.roiManager);
		values.outputs = Prefs.get(PREFS + "outputs", values.outputs);
		values.fillResults = Prefs.get(PREFS + "fill_imagej_results_table", values.fillResults);
		values.saveTo = Prefs.get(PREFS + "save_results_to", values.saveTo);
		return values;
	}

	/** Keeps these values for the next dialog (and the next ImageJ session). */
	void remember() {
		Prefs.set(PREFS + "model", model);
		Prefs.set(PREFS + "unclear_below", unclearBelow);
		Prefs.set(PREFS + "min_crystal_area", minArea);
		Prefs.set(PREFS + "max_crystal_area", maxArea);
		Prefs.set(PREFS + "crystal_size_um", crystalSizeUm);
		Prefs.set(PREFS + "crystal_size_px", crystalSizePx);
		Prefs.set(PREFS + "crystals", crystalContrast);
		Prefs.set(PREFS + "exclude_crystals_on_border", excludeBorder);
		Prefs.set(PREFS + "exclude_sem_data_bar", excludeDataBar);
		Prefs.set(PREFS + "preprocessing", steps);
		Prefs.set(PREFS + "n2v_model", n2vModel);
		Prefs.set(PREFS + "segmenter", segmenter);
		Prefs.set(PREFS + "segmenter_model", segmenterModel);
		Prefs.set(PREFS + "settings_file", settingsFile);
		Prefs.set(PREFS + "roi_manager", roiManager);
		Prefs.set(PREFS + "outputs", outputs);
		Prefs.set(PREFS + "fill_imagej_results_table", fillResults);
		Prefs.set(PREFS + "save_results_to", saveTo);
		Prefs.savePreferences();
	}
}
