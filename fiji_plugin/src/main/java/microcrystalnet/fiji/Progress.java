package microcrystalnet.fiji;

import ij.IJ;

/** Progress of one analysis, reported by a backend; a backend stops when {@link #isCancelled()}. */
public interface Progress {

	/** @param fraction 0 to 1 of the image's work; @param stage what runs now, e.g. "segment" */
	void update(double fraction, String stage);

	boolean isCancelled();

	/** ImageJ's progress bar and status line; Esc cancels (the Escape flag is reset here). */
	static Progress inStatusBar() {
		IJ.resetEscape();
		return new Progress() {
			@Override
			public void update(double fraction, String stage) {
				IJ.showProgress(fraction);
				IJ.showStatus("MicroCrystalNet: " + stage + " (Esc cancels)");
			}

			@Override
			public boolean isCancelled() {
				return IJ.escapePressed();
			}
		};
	}
}
