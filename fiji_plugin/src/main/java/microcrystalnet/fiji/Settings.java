package microcrystalnet.fiji;

import ij.IJ;
import ij.Menus;
import ij.Prefs;
import ij.gui.GenericDialog;
import ij.plugin.PlugIn;

import java.io.File;
import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.util.Properties;

/**
 * Plugins &gt; MicroCrystalNet &gt; Settings...: which Python runs the analysis, and how.
 *
 * <p>Stored in ImageJ's preferences (IJ_Prefs.txt), so they hold for every later session.
 * Recordable like every dialog: {@code run("Settings...", "python=/path/to/python backend=External")}.
 */
public class Settings implements PlugIn {

	static final String PYTHON_KEY = "microcrystalnet.python";
	static final String BACKEND_KEY = "microcrystalnet.backend";
	static final String MODEL_KEY = "microcrystalnet.model";
	static final String PYTHON_VARIABLE = "MICROCRYSTALNET_PYTHON";
	static final String MODEL_DIR_VARIABLE = "MICROCRYSTALNET_MODEL_DIR";
	/** Written by 'microcrystalnet install-fiji' (microcrystalnet.fiji_install) beside the jar. */
	static final String INSTALLED_SETTINGS = "MicroCrystalNet.properties";

	static final String AUTOMATIC = "Automatic";
	static final String IN_PROCESS = "In-process";
	static final String EXTERNAL = "External";
	static final String ONE_PROCESS_PER_IMAGE = "External (one process per image)";
	static final String[] BACKENDS = {AUTOMATIC, IN_PROCESS, EXTERNAL, ONE_PROCESS_PER_IMAGE};

	@Override
	public void run(String arg) {
		GenericDialog dialog = new GenericDialog("MicroCrystalNet Settings");
		// the preference only: what it falls back to is shown, not stored (a later environment variable
		// or install-fiji must still count when the field is left empty)
		dialog.addStringField("Python", Prefs.get(PYTHON_KEY, "").trim(), 40);
		dialog.addChoice("Backend", BACKENDS, backendChoice());
		String openedModel = model();
		dialog.addStringField("Model", openedModel, 24);
		dialog.addMessage("Python: the interpreter that has the microcrystalnet package (e.g. the one\n"
			+ "printed by 'scripts/mcn --python-path' in a MicroCrystalNet checkout); empty: the environment\n"
			+ "variable " + PYTHON_VARIABLE + ", else the one 'scripts/mcn install-fiji' set, else python3\n"
			+ "(now: " + python() + ").\n"
			+ "Backend: Automatic uses the Python session that started this ImageJ when there is one,\n"
			+ "else External: the Python above as one worker process that keeps its models loaded (started\n"
			+ "on first use, stopped with ImageJ). One process per image: a new Python for every image.\n"
			+ "Model: a model name (" + Defaults.text("classify.model") + ") or the path of a Keras model file.");
		dialog.showDialog();
		if (dialog.wasCanceled()) return;
		Prefs.set(PYTHON_KEY, dialog.getNextString().trim());
		Prefs.set(BACKEND_KEY, dialog.getNextChoice());
		String model = dialog.getNextString().trim();
		Prefs.set(MODEL_KEY, model);
		// a model chosen here is what Analyze Crystals... offers next, too (left as it is, its own stays:
		// e.g. a classifier just trained)
		if (!model.equals(openedModel)) Prefs.set(DialogValues.PREFS + "model", model);
		Prefs.savePreferences();
	}

	/**
	 * The Python executable: preference, else MICROCRYSTALNET_PYTHON, else the one 'microcrystalnet
	 * install-fiji' wrote into this installation's plugins/MicroCrystalNet.properties, else python3.
	 */
	public static String python() {
		String fromPrefs = Prefs.get(PYTHON_KEY, "").trim();
		if (!fromPrefs.isEmpty()) return fromPrefs;
		String fromEnvironment = System.getenv(PYTHON_VARIABLE);
		if (fromEnvironment != null && !fromEnvironment.trim().isEmpty()) return fromEnvironment.trim();
		String installed = installed().getProperty("python", "").trim();
		return installed.isEmpty() ? "python3" : installed;
	}

	/**
	 * The model folder 'microcrystalnet install-fiji' wrote into this installation, or "": passed to
	 * the external Python as MICROCRYSTALNET_MODEL_DIR unless that is set, so it finds its models offline.
	 */
	public static String installedModelDir() {
		return installed().getProperty("model_dir", "").trim();
	}

	/** plugins/MicroCrystalNet.properties of this ImageJ (empty if there is none). */
	private static Properties installed() {
		Properties values = new Properties();
		String plugins = Menus.getPlugInsPath();
		if (plugins == null) return values;
		File file = new File(plugins, INSTALLED_SETTINGS);
		if (!file.isFile()) return values;
		try (InputStream stream = new FileInputStream(file)) {
			values.load(stream);
		} catch (IOException error) {
			log("cannot read " + file + ": " + error.getMessage());
		}
		return values;
	}

	static String backendChoice() {
		return Prefs.get(BACKEND_KEY, AUTOMATIC);
	}

	static String model() {
		return Prefs.get(MODEL_KEY, Defaults.text("classify.model"));
	}

	/** The backend to use now, following the Backend setting. */
	static Backend backend() throws Exception {
		String choice = backendChoice();
		Backend inProcess = BackendRegistry.inProcess();
		if (IN_PROCESS.equals(choice)) {
			if (inProcess == null)
				throw new Exception("The backend is set to In-process, but no Python session has registered one.\n"
					+ "Start ImageJ with 'microcrystalnet imagej', or choose Automatic or External in\n"
					+ "Plugins > MicroCrystalNet > Settings...");
			return inProcess;
		}
		if (AUTOMATIC.equals(choice) && inProcess != null) return inProcess;
		if (ONE_PROCESS_PER_IMAGE.equals(choice)) return new ExternalBackend(python());
		return ResidentBackend.forPython(python());
	}

	static void log(String message) {
		IJ.log("MicroCrystalNet: " + message);
	}
}
