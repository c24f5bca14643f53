package microcrystalnet.fiji;

import java.util.Arrays;
import java.util.List;

/**
 * Where Analyze Crystals... puts the crystals, as StarDist's Output type: the ROI Manager, the
 * image's overlay (outlines coloured by class and a class legend), a label image, or several.
 * The tables are always filled. The dialog's Outputs choice; {@link #DEFAULT} is what the
 * command did before there was a choice, so a macro that leaves it out replays the same.
 */
final class Outputs {

	static final String ROI_MANAGER = "ROI Manager";
	static final String OVERLAY = "Overlay";
	static final String LABEL_IMAGE = "Label image";
	static final String ALL = "All";
	static final String[] CHOICES = {ROI_MANAGER, OVERLAY, LABEL_IMAGE, ROI_MANAGER + " + " + OVERLAY,
		ROI_MANAGER + " + " + LABEL_IMAGE, OVERLAY + " + " + LABEL_IMAGE, ALL};
	static final String DEFAULT = ROI_MANAGER;

	final boolean roiManager;
	final boolean overlay;
	final boolean labelImage;

	private Outputs(String choice) {
		if (!Arrays.asList(CHOICES).contains(choice))
			throw new IllegalArgumentException("Outputs: " + choice + " is none of " + Arrays.toString(CHOICES));
		List<String> chosen = ALL.equals(choice) ? Arrays.asList(ROI_MANAGER, OVERLAY, LABEL_IMAGE)
			: Arrays.asList(choice.split(" \\+ "));
		roiManager = chosen.contains(ROI_MANAGER);
		overlay = chosen.contains(OVERLAY);
		labelImage = chosen.contains(LABEL_IMAGE);
	}

	/** The outputs of a choice of {@link #CHOICES}. */
	static Outputs of(String choice) {
		return new Outputs(choice);
	}
}
