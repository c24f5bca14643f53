package microcrystalnet.fiji;

import ij.ImagePlus;

/**
 * The Python side of MicroCrystalNet, as the Fiji command sees it.
 *
 * <p>Two implementations: {@link ExternalBackend} runs the configured Python as a separate
 * process; a Python session that started ImageJ itself (pyimagej or scyjava) registers an
 * in-process implementation in {@link BackendRegistry}, which receives the pixels directly.
 * Both return a folder with the same files ({@code RoiSet.zip}, {@code results.csv},
 * {@code class_summary.csv}, {@code summary.json}), which {@link ResultsDisplay} shows.
 */
public interface Backend {

	/**
	 * Analyses one 2D image.
	 *
	 * @param image the image (its calibration gives the pixel size)
	 * @param settingsJson analysis settings as the JSON of {@code microcrystalnet.config.AnalysisConfig}
	 * @param overlay also write overlay.png (the slowest output; wanted when the results are saved)
	 * @param progress receives progress and is asked whether the user cancelled
	 * @return the folder holding the results
	 * @throws Exception with a message for the user when the analysis fails
	 */
	String analyze(ImagePlus image, String settingsJson, boolean overlay, Progress progress) throws Exception;

	/**
	 * Denoises one 2D image with a Noise2Void model (bioimage.io zip or careamics checkpoint).
	 *
	 * @return a temporary 32-bit TIFF holding the result (values 0 to 1); its folder belongs to the caller
	 */
	String denoise(ImagePlus image, String modelPath, int tileSize, Progress progress) throws Exception;

	/** A short description for the Log, e.g. "in-process Python 3.11". */
	String describe();
}
