package microcrystalnet.fiji;

/** Progress of one analysis, reported by a backend; a backend stops when {@link #isCancelled()}. */
public interface Progress {

	/** @param fraction 0 to 1 of the image's work; @param stage what runs now, e.g. "segment" */
	void update(double fraction, String stage);

	boolean isCancelled();
}
