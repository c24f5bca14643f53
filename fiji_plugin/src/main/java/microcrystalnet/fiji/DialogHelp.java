package microcrystalnet.fiji;

/**
 * The Help of the Analyze Crystals dialog: every field with the description of the setting it
 * sets, from Python's AnalysisConfig (through {@link Defaults}), so the help never disagrees
 * with the backend.
 */
public final class DialogHelp {

	/** The dialog's fields and the settings they set (null: a field of the plugin's own). */
	static final String[][] FIELDS = {
		{"Classifier", "classify.model"},
		{"Unclear below", "classify.unclear_below"},
		{"Min crystal area (um^2)", "segment.min_crystal_area_um2"},
		{"Max crystal area (um^2)", "segment.max_crystal_area_um2"},
		{"Crystal size (the image's unit, px without calibration; 0: automatic)", "segment.crystal_size_um"},
		{"Crystals (bright or dark against what surrounds them)", "segment.crystal_contrast"},
		{"Exclude crystals on border", "segment.exclude_border"},
		{"Exclude SEM data bar", "input.exclude_data_bar"},
		{"Preprocessing", "preprocess.steps"},
		{"N2V model", "preprocess.n2v_model"},
		{"Segmenter (Default: the settings file's, else learned)", "segment.backend"},
		{"Segmenter model (for Learned, and SAM prompted by it)", "segment.learned.model"},
	};

	private DialogHelp() {
	}

	public static String html() {
		StringBuilder html = new StringBuilder("<html><h2>MicroCrystalNet: Analyze Crystals</h2>"
			+ "<p>Segments, classifies and measures every crystal of the image in front with the Python backend "
			+ "(Plugins &gt; MicroCrystalNet &gt; Settings... says which Python). The dialog remembers the last "
			+ "values; <i>Restore defaults</i> puts the backend's back. In a macro, the fields its options leave out "
			+ "take the defaults.</p><dl>");
		for (String[] field : FIELDS)
			html.append("<dt><b>").append(escaped(field[0])).append("</b></dt><dd>")
				.append(escaped(Defaults.help(field[1]))).append(" (default: ")
				.append(escaped(Defaults.text(field[1]).isEmpty() ? "none" : Defaults.text(field[1]))).append(")</dd>");
		html.append("<dt><b>Settings file</b></dt><dd>Optional JSON settings (every setting of the backend, e.g. from "
			+ "'microcrystalnet tune-sam'); the fields of this dialog override it.</dd>"
			+ "<dt><b>ROI Manager</b></dt><dd>Add to the crystals already there (named with the image title; the "
			+ "tables accumulate, in the unit they have), or replace them, the overlay and the tables.</dd>"
			+ "<dt><b>Outputs</b></dt><dd>Where the crystals go: the ROI Manager, the image's overlay (outlines "
			+ "in the class colours and a class legend), a label image (crystal n has the value n, as in its ROI "
			+ "name and Crystal column; calibrated as the image), or several. The tables are always filled.</dd>"
			+ "<dt><b>Fill ImageJ Results table</b></dt><dd>Also put the crystals into ImageJ's own Results "
			+ "table (ImageJ's column names, a Unit column), for Analyze &gt; Distribution... and macros that "
			+ "read it; Replace empties it first.</dd>"
			+ "<dt><b>Save results to</b></dt><dd>An optional folder; the results go to &lt;folder&gt;/&lt;image "
			+ "name&gt;/.</dd></dl>"
			+ "<p>More: README.md of MicroCrystalNet, section <i>In Fiji / ImageJ</i>; every setting: "
			+ "python/microcrystalnet/config.py.</p></html>");
		return html.toString();
	}

	private static String escaped(String text) {
		return text.replace("``", "").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;");
	}
}
