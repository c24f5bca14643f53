package microcrystalnet.fiji;

import ij.ImagePlus;
import ij.Macro;
import ij.Prefs;
import ij.gui.GenericDialog;
import ij.gui.Roi;
import ij.plugin.PlugIn;

import java.io.File;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * Plugins &gt; MicroCrystalNet &gt; Train Segmenter from ROIs...: teaches the learned crystal
 * segmenter the crystals outlined in the ROI Manager on the current image ({@code microcrystalnet
 * train-segmenter}), writes the new model file, and makes it the Segmenter model that Analyze
 * Crystals... offers next.
 *
 * <p>Outlines may be a few crystals (only they and a thin ring around them are learned from) or
 * every crystal of the image (everything else is background). Recordable:
 * {@code run("Train Segmenter from ROIs...", "outlines=[Some crystals] crystal_size=0 steps=200
 * minutes=0 start_from=default model_file=[/data/my-crystals.pt]")}. In a macro, an error goes to
 * the Log and to {@code call("microcrystalnet.fiji.AnalyzeCrystals.lastError")}.
 */
public class TrainSegmenter implements PlugIn {

	static final String SOME = "Some crystals";
	static final String EVERY = "Every crystal";
	private static final String PREFS = "microcrystalnet.train_segmenter.";

	@Override
	public void run(String arg) {
		AnalyzeCrystals.clearError();
		ImagePlus image = AnalyzeCrystals.currentSingleImage();
		if (image == null) return;
		List<Roi> outlines = PythonCommand.outlines(image, ".");
		if (outlines == null) return;
		boolean macro = Macro.getOptions() != null;
		boolean calibrated = FileCalibration.hasPixelSize(image);
		String sizeUnit = calibrated ? image.getCalibration().getUnit() : "px";
		GenericDialog dialog = new GenericDialog("MicroCrystalNet: Train Segmenter from ROIs");
		dialog.addMessage(outlines.size() + " crystal outlines in the ROI Manager, on " + image.getTitle());
		dialog.addChoice("Outlines", new String[] {SOME, EVERY}, macro ? SOME : Prefs.get(PREFS + "outlines", SOME));
		dialog.addNumericField("Crystal_size", 0, 3, 8, sizeUnit + " (0: the outlines' median diameter)");
		String contrastDefault = Defaults.text("segment.crystal_contrast");
		dialog.addChoice("Crystals", Defaults.choices("segment.crystal_contrast"),
			macro ? contrastDefault : Prefs.get(PREFS + "crystals", contrastDefault));
		dialog.addNumericField("Steps", macro ? 0 : Prefs.get(PREFS + "steps", 0), 0, 8, "(0: train for the minutes)");
		dialog.addNumericField("Minutes", macro ? 5 : Prefs.get(PREFS + "minutes", 5), 1, 8, "(0: train for the steps)");
		dialog.addStringField("Start_from", macro ? "default" : Prefs.get(PREFS + "start_from", "default"), 32);
		dialog.addFileField("Model_file", PythonCommand.besideImage(image, "-segmenter.pt"), 32);
		dialog.addMessage("Outlines: Some crystals: only they and a thin ring around them are learned from;\n"
			+ "Every crystal: all other pixels are background, and the watershed thresholds are then chosen\n"
			+ "for the best F1 on them. Crystals: bright or dark against what surrounds them (dark ones are learned\n"
			+ "from inverted, as Analyze Crystals shows them; auto: the shipped segmenter judges, as there).\n"
			+ "Start from: default (the shipped segmenter),\n"
			+ "scratch (a new network), or a model file. With steps and minutes, training stops at the first.\n"
			+ "The model file is written (an existing segmenter model is replaced, any other file is kept)\n"
			+ "and becomes the Segmenter model of Analyze Crystals...");
		if (!AnalyzeCrystals.confirmed(dialog)) return;
		boolean complete = EVERY.equals(dialog.getNextChoice());
		String crystals = dialog.getNextChoice();
		double crystalSize = dialog.getNextNumber();
		double steps = dialog.getNextNumber();
		double minutes = dialog.getNextNumber();
		String startFrom = dialog.getNextString().trim();
		String modelFile = dialog.getNextString().trim();
		if (dialog.invalidNumber() || !(crystalSize >= 0) || !(steps >= 0) || !(minutes >= 0)
			|| steps == 0 && minutes == 0 || steps != Math.rint(steps)) {
			fail("Crystal size, steps and minutes must be 0 or more, steps a whole number, and steps or minutes more "
				+ "than 0.");
			return;
		}
		if (startFrom.isEmpty()) startFrom = "default";
		if (modelFile.isEmpty() || new File(modelFile).isDirectory()
			|| new File(modelFile).getAbsoluteFile().getParentFile() == null
			|| !new File(modelFile).getAbsoluteFile().getParentFile().isDirectory()) {
			fail("The model file '" + modelFile + "' must be a file in an existing folder.");
			return;
		}
		if (!macro) {
			Prefs.set(PREFS + "outlines", complete ? EVERY : SOME);
			Prefs.set(PREFS + "crystals", crystals);
			Prefs.set(PREFS + "steps", steps);
			Prefs.set(PREFS + "minutes", minutes);
			Prefs.set(PREFS + "start_from", startFrom);
		}
		List<String> arguments = new ArrayList<String>();
		if (complete) arguments.add("--complete-outlines");
		arguments.addAll(Arrays.asList("--crystal-contrast", crystals));
		if (crystalSize > 0 && calibrated) arguments.addAll(Arrays.asList("--crystal-size-um", number(crystalSize
			/ ResultsDisplay.unitsPerMicrometre(sizeUnit))));
		if (crystalSize > 0 && !calibrated) arguments.addAll(Arrays.asList("--crystal-size-px", number(crystalSize)));
		if (steps > 0) arguments.addAll(Arrays.asList("--steps", Long.toString((long) steps)));
		if (minutes > 0) arguments.addAll(Arrays.asList("--minutes", number(minutes)));
		arguments.addAll(Arrays.asList("--from", startFrom));
		train(image, outlines, new File(modelFile).getAbsoluteFile(), arguments);
	}

	private static void train(ImagePlus image, List<Roi> outlines, File modelFile, List<String> options) {
		long started = System.nanoTime();
		boolean trained = PythonCommand.train(image, outlines, (tiff, roiSet, names, work) -> {
			List<String> arguments = new ArrayList<String>(Arrays.asList("train-segmenter", tiff.getPath(),
				"--outlines", roiSet.getPath(), "--out", modelFile.getPath()));
			arguments.addAll(options);
			return arguments;
		}, modelFile, "outlined crystals");
		if (!trained) return;
		Prefs.set(DialogValues.PREFS + "segmenter_model", modelFile.getPath());
		Prefs.set(DialogValues.PREFS + "segmenter", "Learned");
		Prefs.savePreferences();
		PythonCommand.report(String.format(Locale.ROOT, "segmenter trained on %d outlines of %s in %.0f s: %s "
			+ "(now the Segmenter model of Analyze Crystals...)", outlines.size(), image.getTitle(),
			(System.nanoTime() - started) / 1e9, modelFile));
	}

	private static String number(double value) {
		return Double.toString(value);
	}

	private static void fail(String message) {
		AnalyzeCrystals.fail(message);
	}
}
