package microcrystalnet.fiji;

import ij.IJ;
import ij.ImagePlus;
import ij.gui.Overlay;
import ij.gui.Roi;
import ij.gui.TextRoi;
import ij.io.RoiDecoder;
import ij.measure.Calibration;
import ij.measure.ResultsTable;
import ij.process.LUT;

import java.awt.Color;
import java.awt.Font;
import java.awt.FontMetrics;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.List;
import java.util.zip.ZipEntry;
import java.util.zip.ZipInputStream;

/**
 * The crystals of a result folder on the image (an overlay of outlines coloured by class, with a
 * class legend in the lower right corner, as overlay.png has it) and as a label image. Display
 * only: the outlines, classes and colours are the backend's (RoiSet.zip, class_summary.csv).
 */
final class ImageOutputs {

	/** The name of every overlay element of the legend (box, colour squares, texts). */
	static final String LEGEND = "MicroCrystalNet legend";
	static final String LABELS_SUFFIX = "-labels";

	private ImageOutputs() {
	}

	/** The ROIs of a RoiSet.zip, in its order. */
	static List<Roi> readRoiSet(File zip) throws IOException {
		List<Roi> rois = new ArrayList<Roi>();
		try (ZipInputStream entries = new ZipInputStream(new FileInputStream(zip))) {
			for (ZipEntry entry = entries.getNextEntry(); entry != null; entry = entries.getNextEntry()) {
				if (!entry.getName().endsWith(".roi")) continue;
				Roi roi = new RoiDecoder(bytes(entries), entry.getName()).getRoi();
				if (roi == null) throw new IOException("ImageJ cannot read " + entry.getName() + " of " + zip);
				rois.add(roi);
			}
		}
		return rois;
	}

	private static byte[] bytes(InputStream stream) throws IOException {
		ByteArrayOutputStream bytes = new ByteArrayOutputStream();
		byte[] buffer = new byte[8192];
		for (int read = stream.read(buffer); read > 0; read = stream.read(buffer))
			bytes.write(buffer, 0, read);
		return bytes.toByteArray();
	}

	/**
	 * Draws {@code crystals} (outlined in their class colour) and the legend of {@code classes}
	 * (class_summary.csv: Class, Name, Colour, Count) on the image's overlay: a new overlay when
	 * {@code replace}, else added to the one there, whose earlier legend is taken away.
	 */
	static void drawOnOverlay(ImagePlus image, List<Roi> crystals, ResultsTable classes, boolean replace) {
		Overlay overlay = replace || image.getOverlay() == null ? new Overlay() : image.getOverlay().duplicate();
		for (int index = overlay.size() - 1; index >= 0; index--)
			if (LEGEND.equals(overlay.get(index).getName())) overlay.remove(index);
		for (Roi crystal : crystals)
			overlay.add(crystal);
		for (Roi element : legend(image.getWidth(), image.getHeight(), classes))
			overlay.add(element);
		image.setOverlay(overlay);
	}

	/**
	 * A white box in the lower right corner with a colour square and "CODE  name  (n=COUNT)" for
	 * each class, sized like overlay.png's legend (microcrystalnet.io.outputs._draw_legend).
	 */
	static List<Roi> legend(int width, int height, ResultsTable classes) {
		int textPx = (int) Math.round(1.2 * Math.max(7, Math.min(17, Math.round(width / 200.0 * 100 / 72))));
		Font font = new Font(Font.SANS_SERIF, Font.PLAIN, textPx);
		FontMetrics metrics = new BufferedImage(1, 1, BufferedImage.TYPE_INT_RGB).createGraphics().getFontMetrics(font);
		int linePx = (int) Math.round(textPx * 1.4);
		int pad = Math.max(3, textPx / 2);
		String[] texts = new String[classes.size()];
		int textWidth = 0;
		for (int row = 0; row < texts.length; row++) {
			texts[row] = String.format("%s  %s  (n=%d)", classes.getStringValue("Class", row),
				classes.getStringValue("Name", row), (int) classes.getValue("Count", row));
			textWidth = Math.max(textWidth, metrics.stringWidth(texts[row]));
		}
		int boxWidth = 3 * pad + textPx + textWidth;
		int boxHeight = 2 * pad + linePx * texts.length;
		int left = width - boxWidth - pad;
		int top = height - boxHeight - pad;
		List<Roi> elements = new ArrayList<Roi>();
		elements.add(named(new Roi(left, top, boxWidth, boxHeight), null, Color.WHITE));
		for (int row = 0; row < texts.length; row++) {
			int y = top + pad + row * linePx;
			Color colour = Color.decode(classes.getStringValue("Colour", row));
			elements.add(named(new Roi(left + pad, y + 1, textPx, textPx), null, colour));
			TextRoi text = new TextRoi(left + 2 * pad + textPx, y, texts[row], font);
			text.setAntialiased(true);
			elements.add(named(text, Color.BLACK, null));
		}
		return elements;
	}

	private static Roi named(Roi element, Color stroke, Color fill) {
		element.setName(LEGEND);
		if (stroke != null) element.setStrokeColor(stroke);
		if (fill != null) element.setFillColor(fill);
		return element;
	}

	/**
	 * Opens labels.tif of {@code folder} (crystal n has the value n: the number of its ROI name
	 * and its Crystal column) as "&lt;title&gt;-labels", with the image's pixel size when it has one
	 * (its unit: nm, um, ...), else the backend's (a pixel size from the settings file, or none).
	 */
	static ImagePlus showLabelImage(ImagePlus image, File folder, int crystals) throws IOException {
		File file = new File(folder, "labels.tif");
		ImagePlus labels = IJ.openImage(file.getPath());
		if (labels == null) throw new IOException("ImageJ could not open " + file);
		labels.setTitle(AnalyzeCrystals.baseName(image.getTitle()) + LABELS_SUFFIX);
		if (FileCalibration.hasPixelSize(image)) {
			Calibration spatial = new Calibration();
			spatial.pixelWidth = image.getCalibration().pixelWidth;
			spatial.pixelHeight = image.getCalibration().pixelHeight;
			spatial.setUnit(image.getCalibration().getUnit());
			labels.setCalibration(spatial);
		}
		labels.setDisplayRange(0, Math.max(1, crystals));
		labels.getProcessor().setLut(distinctColours());
		labels.show();
		return labels;
	}

	/** Black for the background, then hues a golden angle apart: neighbouring crystals differ. */
	private static LUT distinctColours() {
		byte[] red = new byte[256];
		byte[] green = new byte[256];
		byte[] blue = new byte[256];
		for (int index = 1; index < 256; index++) {
			Color colour = Color.getHSBColor((index * 0.618034f) % 1, 0.75f, 1f);
			red[index] = (byte) colour.getRed();
			green[index] = (byte) colour.getGreen();
			blue[index] = (byte) colour.getBlue();
		}
		return new LUT(red, green, blue);
	}
}
