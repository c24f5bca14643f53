package microcrystalnet.fiji;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * What the display needs of a result folder's summary.json (see
 * microcrystalnet.io.outputs.analysis_summary): the unit of the results, the pixel size and
 * where it came from, and the notices for the user (its fiji_notices: what to change named as
 * the Fiji user changes it).
 *
 * <p>ImageJ 1.x has no JSON parser; this reads the few top-level values it needs, which
 * analysis_summary writes before any nested object that could hold the same key.
 */
final class Summary {

	/** "um" or "pixel". */
	final String unit;
	final Double pixelSizeUm;
	final String pixelSizeSource;
	/** For the Log: in the Fiji dialog's words. */
	final List<String> notices;
	/** The size of the image analysed, px (null in summaries of versions that did not write it). */
	final Double widthPx, heightPx;

	private Summary(String text) throws IOException {
		unit = (String) value(text, "unit");
		Object size = value(text, "pixel_size_um");
		pixelSizeUm = size instanceof Double ? (Double) size : null;
		pixelSizeSource = (String) value(text, "pixel_size_source");
		// the notices in Fiji's words (dialog fields, ImageJ commands; microcrystalnet.notices), else as written
		Object fiji = value(text, "fiji_notices");
		@SuppressWarnings("unchecked")
		List<String> read = (List<String>) (fiji != null ? fiji : value(text, "notices"));
		notices = read == null ? Collections.<String>emptyList() : read;
		Object width = value(text, "width"), height = value(text, "height"); // the first: of image_size_px
		widthPx = width instanceof Double ? (Double) width : null;
		heightPx = height instanceof Double ? (Double) height : null;
	}

	static Summary read(File folder) throws IOException {
		File file = new File(folder, "summary.json");
		return new Summary(new String(Files.readAllBytes(file.toPath()), StandardCharsets.UTF_8));
	}

	boolean inMicrometres() {
		return "um".equals(unit);
	}

	/** The text of one JSON string, e.g. the resident worker's error message (escapes undone). */
	static String jsonText(String json) throws IOException {
		return (String) new Reader(json, 0).value();
	}

	/** The first value of {@code key}: a String, Double, List of Strings, or null (JSON null or absent). */
	private static Object value(String json, String key) throws IOException {
		int at = json.indexOf("\"" + key + "\":");
		if (at < 0) return null;
		Reader reader = new Reader(json, at + key.length() + 3);
		return reader.value();
	}

	private static final class Reader {
		private final String text;
		private int at;

		Reader(String text, int at) {
			this.text = text;
			this.at = at;
		}

		Object value() throws IOException {
			skipSpace();
			char first = text.charAt(at);
			if (first == '"') return string();
			if (text.startsWith("null", at)) return null;
			if (first == '[') {
				List<String> items = new ArrayList<String>();
				at++;
				skipSpace();
				if (text.charAt(at) == ']') return items;
				while (true) {
					skipSpace();
					items.add(string());
					skipSpace();
					char next = text.charAt(at++);
					if (next == ']') return items;
					if (next != ',') throw new IOException("summary.json: unexpected '" + next + "' in a list");
				}
			}
			int end = at;
			while (end < text.length() && "+-.0123456789eE".indexOf(text.charAt(end)) >= 0)
				end++;
			try {
				return Double.valueOf(text.substring(at, end));
			} catch (NumberFormatException error) {
				throw new IOException("summary.json: cannot read a value at character " + at);
			}
		}

		private void skipSpace() {
			while (Character.isWhitespace(text.charAt(at)))
				at++;
		}

		private String string() throws IOException {
			if (text.charAt(at) != '"') throw new IOException("summary.json: expected text at character " + at);
			StringBuilder value = new StringBuilder();
			for (at++; text.charAt(at) != '"'; at++) {
				char c = text.charAt(at);
				if (c != '\\') {
					value.append(c);
					continue;
				}
				char escaped = text.charAt(++at);
				switch (escaped) {
					case 'n': value.append('\n'); break;
					case 't': value.append('\t'); break;
					case 'r': value.append('\r'); break;
					case 'b': value.append('\b'); break;
					case 'f': value.append('\f'); break;
					case 'u':
						value.append((char) Integer.parseInt(text.substring(at + 1, at + 5), 16));
						at += 4;
						break;
					default: value.append(escaped); // \" \\ \/
				}
			}
			at++;
			return value.toString();
		}
	}
}
