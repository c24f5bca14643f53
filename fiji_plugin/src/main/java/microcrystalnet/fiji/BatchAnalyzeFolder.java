package microcrystalnet.fiji;

import ij.IJ;
import ij.Macro;
import ij.Prefs;
import ij.gui.GenericDialog;
import ij.measure.ResultsTable;
import ij.plugin.PlugIn;
import ij.plugin.frame.Recorder;

import java.awt.GraphicsEnvironment;
import java.io.File;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * Plugins &gt; MicroCrystalNet &gt; Batch Analyze Folder...: every SEM image of a folder analysed by
 * {@code microcrystalnet batch}: {@code <output>/<image name>/} per image (as Analyze Crystals...
 * saves them) and the batch tables {@code batch_results.csv}, {@code batch_images.csv},
 * {@code batch_errors.csv} and {@code batch_report.html}. Resumable: finished images are skipped
 * unless Redo_finished is ticked. An image that fails does not stop the others; at the end the
 * failures are listed (Log, error message, {@code lastError}) and {@code batch_images.csv} opens
 * as a table. Recordable: {@code run("Batch Analyze Folder...", "input=[/data/sem images]
 * output=[/data/results] settings_file=[] classifier=reference-2023-11-19 segmenter_model=[] workers=0")};
 * from {@code ImageJ -batch}, a batch with failures exits with status 1.
 */
public class BatchAnalyzeFolder implements PlugIn {

	private static final String PREFS = "microcrystalnet.batch.";
	static final String IMAGES_TABLE = "MicroCrystalNet Batch";
	/** File times may be this coarse (FAT, some network file systems). */
	private static final long FILE_TIME_RESOLUTION_MS = 2000;

	@Override
	public void run(String arg) {
		AnalyzeCrystals.clearError();
		boolean macro = Macro.getOptions() != null;
		DialogValues.renameLegacyModelKey();
		DialogValues analysis = macro ? DialogValues.defaults() : DialogValues.remembered();
		GenericDialog dialog = new GenericDialog("MicroCrystalNet: Batch Analyze Folder");
		dialog.addDirectoryField("Input", macro ? "" : Prefs.get(PREFS + "input", ""), 40);
		dialog.addDirectoryField("Output", macro ? "" : Prefs.get(PREFS + "output", ""), 40);
		dialog.addFileField("Settings_file", macro ? "" : Prefs.get(PREFS + "settings_file", ""), 40);
		dialog.addStringField("Classifier", analysis.model, 40);
		dialog.addFileField("Segmenter_model", analysis.segmenterModel, 40);
		dialog.addNumericField("Workers", macro ? 0 : Prefs.get(PREFS + "workers", 0), 0, 4,
			"parallel processes (0: one image after another)");
		dialog.addCheckbox("Include_subfolders", !macro && Prefs.get(PREFS + "include_subfolders", false));
		dialog.addCheckbox("Redo_finished", false);
		dialog.addMessage("Each image's results go to <output>/<image name>/; the batch tables to <output>/\n"
			+ "(batch_results.csv, batch_images.csv, batch_errors.csv, batch_report.html). Finished images\n"
			+ "are skipped unless Redo finished is ticked. Settings file: a MicroCrystalNet settings file (JSON)\n"
			+ "for everything else; Classifier and Segmenter model (from Analyze Crystals...) apply on top of it.");
		if (!AnalyzeCrystals.confirmed(dialog)) return;
		String input = dialog.getNextString().trim();
		String output = dialog.getNextString().trim();
		String settingsFile = dialog.getNextString().trim();
		String model = dialog.getNextString().trim();
		String segmenterModel = dialog.getNextString().trim();
		double workers = dialog.getNextNumber();
		boolean recursive = dialog.getNextBoolean();
		boolean force = dialog.getNextBoolean();
		if (input.isEmpty() || !new File(input).isDirectory()) {
			fail("The input folder '" + input + "' does not exist.\nChoose the folder of SEM images (in a macro: "
				+ "input=[/path with spaces/in brackets]).");
			return;
		}
		if (output.isEmpty()) {
			fail("Choose an output folder for the results.");
			return;
		}
		if (!settingsFile.isEmpty() && !new File(settingsFile).isFile()) {
			fail("The settings file " + settingsFile + " does not exist.");
			return;
		}
		if (dialog.invalidNumber() || !(workers >= 0) || workers != Math.rint(workers)) {
			fail("Workers must be a whole number, 0 or more.");
			return;
		}
		if (!macro) {
			Prefs.set(PREFS + "input", input);
			Prefs.set(PREFS + "output", output);
			Prefs.set(PREFS + "settings_file", settingsFile);
			Prefs.set(PREFS + "workers", workers);
			Prefs.set(PREFS + "include_subfolders", recursive);
		}
		List<String> arguments = new ArrayList<String>(Arrays.asList("batch", input, "--out", output, "--progress",
			"machine", "--workers", Long.toString((long) workers)));
		if (!settingsFile.isEmpty()) arguments.addAll(Arrays.asList("--config", settingsFile));
		if (!model.isEmpty()) arguments.addAll(Arrays.asList("--model", model));
		if (!segmenterModel.isEmpty()) arguments.addAll(Arrays.asList("--segmenter-model", segmenterModel));
		if (recursive) arguments.add("--recursive");
		if (force) arguments.add("--force");
		analyse(arguments, new File(output));
	}

	private static void analyse(List<String> arguments, File output) {
		File work = null;
		long started = System.nanoTime();
		long startedMillis = System.currentTimeMillis();
		Exception failure = null;
		try {
			work = PythonCommand.workFolder();
			Progress progress = Progress.inStatusBar();
			progress.update(0, "batch: starting");
			PythonCommand.run(work, progress, arguments.toArray(new String[0]));
		} catch (CancelledException cancelled) {
			Recorder.disableCommandRecording();
			IJ.showStatus("MicroCrystalNet: batch cancelled; finished images are kept, the batch continues with "
				+ "the others when run again");
			AnalyzeCrystals.endBatch("cancelled");
			return;
		} catch (Exception error) {
			failure = error;
		} finally {
			IJ.showProgress(1.0);
			if (work != null) ResultsDisplay.deleteTree(work);
		}
		File images = new File(output, "batch_images.csv");
		File errors = new File(output, "batch_errors.csv");
		// batch_errors.csv is rewritten at the end of every batch that analysed: an older one is not this batch's
		boolean tablesWritten = errors.isFile() && errors.lastModified() >= startedMillis - FILE_TIME_RESOLUTION_MS;
		if (failure != null && !tablesWritten) { // wrong settings, no images, a folder in use: nothing analysed
			fail("Batch Analyze Folder: " + PythonCommand.message(failure));
			AnalyzeCrystals.endBatch(PythonCommand.message(failure));
			return;
		}
		ResultsTable analysed = images.isFile() ? ResultsTable.open2(images.getPath()) : null;
		ResultsTable failed = errors.isFile() ? ResultsTable.open2(errors.getPath()) : null;
		int done = analysed == null ? 0 : analysed.size();
		int failures = failed == null ? 0 : failed.size();
		if (analysed != null && !GraphicsEnvironment.isHeadless()) analysed.show(IMAGES_TABLE);
		PythonCommand.report(String.format(Locale.ROOT, "batch: %d image(s) with results, %d failed, in %.0f s; "
			+ "tables and report in %s", done, failures, (System.nanoTime() - started) / 1e9, output));
		if (failures == 0 && failure == null) {
			AnalyzeCrystals.endBatch("");
			return;
		}
		StringBuilder list = new StringBuilder();
		for (int row = 0; failed != null && row < failed.size(); row++)
			list.append('\n').append(failed.getStringValue("Image", row)).append(": ")
				.append(failed.getStringValue("Error", row));
		String message = failures + " image(s) could not be analysed (" + new File(output, "batch_errors.csv") + "):"
			+ list;
		if (failures == 0) message = PythonCommand.message(failure);
		fail(message);
		AnalyzeCrystals.endBatch(message); // ImageJ -batch: exit status 1
	}

	private static void fail(String message) {
		AnalyzeCrystals.fail(message);
	}
}
