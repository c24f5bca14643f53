package microcrystalnet.fiji;

import ij.IJ;
import ij.ImagePlus;
import ij.Macro;
import ij.Prefs;
import ij.gui.GenericDialog;
import ij.plugin.PlugIn;
import ij.plugin.frame.Recorder;

import java.io.File;

/**
 * Plugins &gt; MicroCrystalNet &gt; Denoise...: Noise2Void on the current image with a model trained
 * by {@code microcrystalnet n2v train} (or any careamics bioimage.io Noise2Void model). The result
 * opens as a new 32-bit image (values 0 to 1) with the same calibration; the original is kept.
 * Recordable: {@code run("Denoise...", "model=[/path/n2v.zip] tile_size=256")}. In a macro, an error
 * goes to the Log and to {@code call("microcrystalnet.fiji.AnalyzeCrystals.lastError")}.
 */
public class Denoise implements PlugIn {

	static final String MODEL_KEY = "microcrystalnet.n2v_model";

	@Override
	public void run(String arg) {
		AnalyzeCrystals.clearError();
		ImagePlus image = AnalyzeCrystals.currentSingleImage();
		if (image == null) return;
		// in a macro, a model its options leave out is none, never what a dialog last remembered
		boolean macro = Macro.getOptions() != null;
		GenericDialog dialog = new GenericDialog("MicroCrystalNet: Denoise (Noise2Void)");
		dialog.addStringField("Model", macro ? "" : Prefs.get(MODEL_KEY, ""), 40);
		dialog.addNumericField("Tile_size", 256, 0, 6, "px");
		dialog.addMessage("Model: a Noise2Void model (bioimage.io zip or careamics .ckpt). Train one on your own\n"
			+ "noisy images with: microcrystalnet n2v train IMAGES --out n2v.zip");
		if (!AnalyzeCrystals.confirmed(dialog)) return;
		String model = dialog.getNextString().trim();
		int tileSize = (int) dialog.getNextNumber();
		if (model.isEmpty() || !new File(model).isFile()) {
			fail("The Noise2Void model '" + model + "' does not exist.\nTrain one with "
				+ "'microcrystalnet n2v train IMAGES --out n2v.zip' and give its path.");
			return;
		}
		if (tileSize < 32) {
			fail("The tile size must be at least 32 px.");
			return;
		}
		if (!macro) Prefs.set(MODEL_KEY, model);
		File result = null;
		try {
			Backend backend = Settings.backend();
			result = new File(backend.denoise(image, model, tileSize, Progress.inStatusBar()));
			ImagePlus denoised = IJ.openImage(result.getPath());
			if (denoised == null) throw new Exception("ImageJ could not open the denoised image " + result);
			denoised.setTitle(AnalyzeCrystals.baseName(image.getTitle()) + "-n2v");
			denoised.setCalibration(image.getCalibration());
			denoised.show();
			IJ.showStatus("MicroCrystalNet: denoised with " + new File(model).getName());
		} catch (CancelledException cancelled) {
			Recorder.disableCommandRecording();
			IJ.showStatus("MicroCrystalNet: cancelled");
		} catch (Exception error) {
			fail(image.getTitle() + ": " + (error.getMessage() != null ? error.getMessage() : error.toString()));
		} finally {
			IJ.showProgress(1.0);
			if (result != null) ResultsDisplay.deleteTree(result.getParentFile());
		}
	}

	private static void fail(String message) {
		AnalyzeCrystals.fail(message);
	}
}
