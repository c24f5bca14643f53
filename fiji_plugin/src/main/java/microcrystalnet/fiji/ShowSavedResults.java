package microcrystalnet.fiji;

import ij.ImagePlus;
import ij.Macro;
import ij.Prefs;
import ij.gui.GenericDialog;
import ij.plugin.PlugIn;

/**
 * Plugins &gt; MicroCrystalNet &gt; Show Saved Results...: a result folder written earlier (by Analyze
 * Crystals..., Batch Analyze Folder... or the command line's {@code analyze}/{@code batch}) back on
 * the current image, the image it was analysed from, as Analyze Crystals... shows its results,
 * added to the ROI Manager and tables (never emptied). Recordable:
 * {@code run("Show Saved Results...", "result_folder=[/data/results/image1] outputs=[ROI Manager] ")};
 * macros may also {@code call} {@link ResultsDisplay#showResultFolder}.
 */
public class ShowSavedResults implements PlugIn {

	static final String FOLDER_KEY = "microcrystalnet.saved_results";

	@Override
	public void run(String arg) {
		AnalyzeCrystals.clearError();
		ImagePlus image = AnalyzeCrystals.currentSingleImage();
		if (image == null) return;
		boolean macro = Macro.getOptions() != null;
		GenericDialog dialog = new GenericDialog("MicroCrystalNet: Show Saved Results");
		dialog.addDirectoryField("Result_folder", macro ? "" : Prefs.get(FOLDER_KEY, ""), 40);
		dialog.addChoice("Outputs", Outputs.CHOICES, Outputs.DEFAULT);
		dialog.addCheckbox("Fill_ImageJ_Results_table", false);
		dialog.addMessage("Result folder: the folder of this image's results, <output>/<image name>, with\n"
			+ "results.csv, RoiSet.zip and summary.json. They are added to the ROI Manager and tables.");
		if (!AnalyzeCrystals.confirmed(dialog)) return;
		String folder = dialog.getNextString().trim();
		String outputs = dialog.getNextChoice();
		boolean fillResults = dialog.getNextBoolean();
		if (!ResultsDisplay.showResultFolder(folder, outputs, Boolean.toString(fillResults)).isEmpty() && !macro) {
			Prefs.set(FOLDER_KEY, folder);
		}
	}
}
