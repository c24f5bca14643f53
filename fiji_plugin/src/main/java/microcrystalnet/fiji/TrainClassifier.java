package microcrystalnet.fiji;

import ij.ImagePlus;
import ij.Macro;
import ij.Prefs;
import ij.gui.GenericDialog;
import ij.gui.Roi;
import ij.plugin.PlugIn;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * Plugins &gt; MicroCrystalNet &gt; Train Classifier from ROIs...: trains a crystal classifier
 * ({@code microcrystalnet train}) on the crystals outlined in the ROI Manager on the current image,
 * each labelled with its class, and makes the new model the Classifier that Analyze Crystals... offers.
 *
 * <p>A ROI's class comes from its name (a class code or word in it: "0001-RES", "rhombic 3",
 * "scene.tif:0007-RA-SA", as Analyze Crystals names its ROIs), from the name of its ROI group, or
 * from one of its properties. The crystals of one image are split one by one into training,
 * validation and test crystals, so at least 10 labelled crystals are needed. Recordable:
 * {@code run("Train Classifier from ROIs...", "class_from=[ROI name] property=class epochs=30
 * run_folder=[/data/my-classifier]")}.
 */
public class TrainClassifier implements PlugIn {

	static final String FROM_NAME = "ROI name";
	static final String FROM_GROUP = "ROI group name";
	static final String FROM_PROPERTY = "ROI property";
	private static final String PREFS = "microcrystalnet.train_classifier.";
	/** What the Python side writes into a run folder; a folder holding it may be trained into again. */
	static final String MODEL_FILE = "model.keras";

	@Override
	public void run(String arg) {
		AnalyzeCrystals.clearError();
		ImagePlus image = AnalyzeCrystals.currentSingleImage();
		if (image == null) return;
		List<Roi> outlines = PythonCommand.outlines(image, ",\nnamed by its class (RES, PES, AA, RA-SA); or run "
			+ "Analyze Crystals... and correct the class in the names of its ROIs.");
		if (outlines == null) return;
		boolean macro = Macro.getOptions() != null;
		GenericDialog dialog = new GenericDialog("MicroCrystalNet: Train Classifier from ROIs");
		dialog.addMessage(outlines.size() + " crystal outlines in the ROI Manager, on " + image.getTitle());
		dialog.addChoice("Class_from", new String[] {FROM_NAME, FROM_GROUP, FROM_PROPERTY},
			macro ? FROM_NAME : Prefs.get(PREFS + "class_from", FROM_NAME));
		dialog.addStringField("Property", macro ? "class" : Prefs.get(PREFS + "property", "class"), 16);
		dialog.addNumericField("Epochs", Defaults.number("training.epochs"), 0, 6, "at most");
		dialog.addDirectoryField("Run_folder", PythonCommand.besideImage(image, "-classifier"), 32);
		dialog.addMessage("Class: a code or word for it (RES/rhombic, PES/polyhedral, AA/amorphous, RA-SA/spherical)\n"
			+ "in the ROI's name, its group's name (Edit > Options > Roi Defaults) or the property above.\n"
			+ "ROIs without a class, or marked unclear, are left out. The crystals are split one by one into\n"
			+ "training, validation and test crystals: at least 10 labelled crystals are needed.\n"
			+ "The run folder receives model.keras, which becomes the Classifier of Analyze Crystals..., and\n"
			+ "evaluation/report.html (scores on the test crystals).");
		if (!AnalyzeCrystals.confirmed(dialog)) return;
		String classFrom = dialog.getNextChoice();
		String property = dialog.getNextString().trim();
		double epochs = dialog.getNextNumber();
		File run = new File(dialog.getNextString().trim()).getAbsoluteFile();
		if (dialog.invalidNumber() || !(epochs >= 1) || epochs != Math.rint(epochs)) {
			fail("Epochs must be a whole number of 1 or more.");
			return;
		}
		if (FROM_PROPERTY.equals(classFrom) && property.isEmpty()) {
			fail("Give the name of the ROI property that holds the class.");
			return;
		}
		if (!macro) {
			Prefs.set(PREFS + "class_from", classFrom);
			Prefs.set(PREFS + "property", property);
		}
		train(image, outlines, classFrom, property, (long) epochs, run);
	}

	/** The class text of each ROI from its group name or property (null: from its name, Python reads that). */
	private static List<String> classTexts(List<Roi> outlines, String classFrom, String property) {
		if (FROM_NAME.equals(classFrom)) return null;
		List<String> texts = new ArrayList<String>();
		for (Roi roi : outlines) {
			String text = FROM_GROUP.equals(classFrom) ? (roi.getGroup() > 0 ? Roi.getGroupName(roi.getGroup()) : null)
				: roi.getProperty(property);
			texts.add(text == null ? "" : text.trim());
		}
		return texts;
	}

	private static void train(ImagePlus image, List<Roi> outlines, String classFrom, String property, long epochs,
		File run) {
		List<String> classes = classTexts(outlines, classFrom, property);
		if (classes != null && classes.stream().allMatch(String::isEmpty)) {
			fail(image.getTitle() + ": None of the " + outlines.size() + " ROIs has a " + (FROM_GROUP.equals(classFrom)
				? "group with a name (name the groups by class in Edit > Options > Roi Defaults)"
				: "property '" + property + "'") + ".");
			return;
		}
		long started = System.nanoTime();
		File model = new File(run, MODEL_FILE);
		boolean trained = PythonCommand.train(image, outlines, (tiff, roiSet, names, work) -> {
			List<String> arguments = new ArrayList<String>(Arrays.asList("train", tiff.getPath(), roiSet.getPath(),
				"--out", run.getPath(), "--epochs", Long.toString(epochs), "--split-by", "crystal"));
			if (classes != null)
				arguments.addAll(Arrays.asList("--classes", classTable(names, classes, work).getPath()));
			return arguments;
		}, model, "data: ", "split by ", "accuracy ");
		if (!trained) return;
		Prefs.set(DialogValues.PREFS + "model", model.getPath());
		Prefs.savePreferences();
		PythonCommand.report(String.format(Locale.ROOT, "classifier trained on the crystals of %s in %.0f s: %s "
			+ "(now the Classifier of Analyze Crystals...; scores on the test crystals: %s)", image.getTitle(),
			(System.nanoTime() - started) / 1e9, model, new File(run, "evaluation/report.html")));
	}

	/** {@code work/classes.csv}: Name, Class of every ROI (the table 'microcrystalnet train --classes' reads). */
	private static File classTable(List<String> names, List<String> classes, File work) throws IOException {
		StringBuilder table = new StringBuilder("Name,Class\n");
		for (int index = 0; index < names.size(); index++)
			table.append(csvField(names.get(index))).append(',').append(csvField(classes.get(index))).append('\n');
		File file = new File(work, "classes.csv");
		Files.write(file.toPath(), table.toString().getBytes(StandardCharsets.UTF_8));
		return file;
	}

	private static String csvField(String text) {
		return "\"" + text.replace("\"", "\"\"") + "\"";
	}

	private static void fail(String message) {
		AnalyzeCrystals.fail(message);
	}
}
