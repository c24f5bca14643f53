package microcrystalnet.fiji;

/**
 * Where a Python session that started ImageJ registers its in-process backend.
 *
 * <p>The plugin jar is on the JVM's class path in that case, so this class (and its static
 * field) is the same one the command sees, whichever class loader ImageJ uses for plugins.
 */
public final class BackendRegistry {

	private static volatile Backend inProcess;

	private BackendRegistry() {
	}

	public static void register(Backend backend) {
		inProcess = backend;
	}

	public static void unregister() {
		inProcess = null;
	}

	/** The registered in-process backend, or null. */
	public static Backend inProcess() {
		return inProcess;
	}
}
