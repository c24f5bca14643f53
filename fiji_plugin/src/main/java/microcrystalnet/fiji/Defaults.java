package microcrystalnet.fiji;

import java.io.IOException;
import java.io.InputStream;
import java.util.Properties;

/**
 * The analysis settings' defaults, choices and help texts, read from the jar's
 * {@code defaults.properties}, which scripts/build-plugin writes from Python's
 * {@code microcrystalnet.config.AnalysisConfig} (microcrystalnet.fiji_defaults): one source, so
 * the dialog's defaults are the backend's. Keys are the settings' dotted paths, e.g.
 * {@code segment.min_crystal_area_um2}.
 */
public final class Defaults {

	static final String RESOURCE = "defaults.properties";
	private static final Properties VALUES = load();

	private Defaults() {
	}

	private static Properties load() {
		Properties values = new Properties();
		try (InputStream stream = Defaults.class.getResourceAsStream(RESOURCE)) {
			if (stream == null)
				throw new IllegalStateException("The MicroCrystalNet plugin was built without its " + RESOURCE
					+ " (build it with scripts/build-plugin, which writes it from the Python settings).");
			values.load(stream);
		} catch (IOException error) {
			throw new IllegalStateException("Cannot read the plugin's " + RESOURCE + ": " + error.getMessage());
		}
		return values;
	}

	/** The default of a setting as text ("" for none; a list comma-separated). */
	public static String text(String path) {
		String value = VALUES.getProperty(path);
		if (value == null) throw new IllegalArgumentException("no setting " + path + " in the plugin's " + RESOURCE);
		return value;
	}

	/** The default of a number setting; 0 for one without a default (None: automatic). */
	public static double number(String path) {
		String value = text(path);
		return value.isEmpty() ? 0 : Double.parseDouble(value);
	}

	public static boolean flag(String path) {
		return Boolean.parseBoolean(text(path));
	}

	/** The allowed values of a choice setting. */
	public static String[] choices(String path) {
		return text(path + ".choices").split(",");
	}

	/** The description of a setting (its docstring in Python), or "". */
	public static String help(String path) {
		return VALUES.getProperty(path + ".help", "");
	}
}
