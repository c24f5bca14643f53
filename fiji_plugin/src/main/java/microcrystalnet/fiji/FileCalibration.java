package microcrystalnet.fiji;

import ij.ImagePlus;
import ij.io.FileInfo;
import ij.measure.Calibration;

import java.io.File;
import java.math.BigDecimal;
import java.math.MathContext;

/**
 * The pixel size of an image that ImageJ opened uncalibrated: ImageJ does not read the
 * instrument metadata of SEM files (FEI, Zeiss, Tescan, JEOL), the backend does. The backend
 * gets the file the image was opened from, reads its metadata as the command line does, and
 * reports the pixel size in summary.json; {@link #applyTo} then calibrates the image with it.
 */
public final class FileCalibration {

	private FileCalibration() {
	}

	/**
	 * Whether the image's calibration gives a pixel size in a length unit. A TIFF without ImageJ's
	 * calibration but with a TIFF resolution of 1 (as SEM instruments write them) opens "scaled"
	 * at 1 unit " " per pixel, which is no pixel size.
	 */
	public static boolean hasPixelSize(ImagePlus image) {
		Calibration calibration = image.getCalibration();
		return calibration.scaled() && ResultsDisplay.unitsPerMicrometre(calibration.getUnit()) != null;
	}

	/**
	 * The file an uncalibrated image was opened from, whose instrument metadata may give its pixel
	 * size; null for a calibrated image, or one not opened from a file that is still there.
	 */
	public static String metadataFile(ImagePlus image) {
		if (hasPixelSize(image)) return null;
		FileInfo info = image.getOriginalFileInfo();
		if (info == null || info.directory == null || info.directory.isEmpty() || info.fileName == null) return null;
		File file = new File(info.directory, info.fileName);
		return file.isFile() ? file.getPath() : null;
	}

	/** {@code value} with at most 4 significant digits and no trailing zeros: 40, 7.344, 0.5. */
	static String fourDigits(double value) {
		return new BigDecimal(value).round(new MathContext(4)).stripTrailingZeros().toPlainString();
	}

	/**
	 * Calibrates an image without pixel size with the pixel size the analysis found (from the
	 * file's metadata, or given in the settings), saying so in the Log; a calibrated image is left
	 * as it is.
	 */
	static void applyTo(ImagePlus image, Summary summary) {
		if (hasPixelSize(image) || summary.pixelSizeUm == null) return;
		Calibration calibration = image.getCalibration().copy();
		calibration.pixelWidth = summary.pixelSizeUm;
		calibration.pixelHeight = summary.pixelSizeUm;
		calibration.setUnit(ResultsDisplay.MICROMETRE);
		image.setCalibration(calibration);
		Settings.log(image.getTitle() + " had no calibration: set to " + fourDigits(summary.pixelSizeUm * 1000)
			+ " nm/px from the " + summary.pixelSizeSource);
	}
}
