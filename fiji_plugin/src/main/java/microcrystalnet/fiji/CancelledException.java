package microcrystalnet.fiji;

/** The user pressed Esc: the analysis stopped and nothing was shown. */
public class CancelledException extends Exception {

	private static final long serialVersionUID = 1L;

	public CancelledException() {
		super("Cancelled");
	}
}
