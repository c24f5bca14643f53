// MicroCrystalNet: analyse every SEM image of a folder.
//
// For each image, <output>/<image name>/ receives RoiSet.zip, results.csv, class_summary.csv,
// labels.tif and summary.json; <output>/batch_summary.csv combines the class counts, fractions
// and mean sizes of all images (one row per image and class).
//
// Resumable: an image whose result folder already holds summary.json is skipped, so a batch
// that was interrupted continues where it stopped. An image that cannot be opened or analysed
// is reported in the Log and the batch goes on with the next one.
//
// Interactive: Plugins > Macros > Run... asks for the two folders.
// Without windows:  ImageJ -batch batch_analyze_folder.ijm "input=/data/sem output=/data/results"
// (plain ImageJ 1.x needs an X display for its dialogs; on a server use xvfb-run, or Fiji --headless)
//
// Adapt the analysis settings here (the fields of Plugins > MicroCrystalNet > Analyze Crystals...;
// model= also takes the path of a model you trained: model=[/data/run1/model.keras]):
settings = "model=reference-2023-11-19 unclear_below=0.5 min_crystal_area=0.25 max_crystal_area=40 exclude_sem_data_bar "
    + "preprocessing=[nlm,n2v,unsharp,opening,closing] n2v_model=[] segmenter=Default settings_file=[]";

extensions = newArray(".tif", ".tiff", ".png", ".jpg", ".jpeg");

function argumentValue(arguments, key) {
    parts = split(arguments, " ");
    for (k = 0; k < parts.length; k++)
        if (startsWith(parts[k], key + "=")) return substring(parts[k], lengthOf(key) + 1);
    return "";
}

function isImageName(name) {
    lower = toLowerCase(name);
    for (k = 0; k < extensions.length; k++)
        if (endsWith(lower, extensions[k])) return true;
    return false;
}

function withSeparator(folder) {
    if (!endsWith(folder, File.separator) && !endsWith(folder, "/")) folder = folder + File.separator;
    return folder;
}

arguments = getArgument();
input = argumentValue(arguments, "input");
output = argumentValue(arguments, "output");
if (input == "") input = getDirectory("Choose the folder of SEM images");
if (output == "") output = getDirectory("Choose the folder for the results");
input = withSeparator(input);
output = withSeparator(output);
File.makeDirectory(output);

setBatchMode(true);
names = getFileList(input);
images = newArray(0);
for (i = 0; i < names.length; i++)
    if (isImageName(names[i])) images = Array.concat(images, names[i]);

combined = "";
analysed = 0; skipped = 0; failed = 0;
for (i = 0; i < images.length; i++) {
    name = images[i];
    base = File.getNameWithoutExtension(name);
    label = "[" + (i + 1) + "/" + images.length + "] " + name;
    summaryFile = output + base + File.separator + "summary.json";
    if (File.exists(summaryFile)) {
        print(label + ": done before, skipped");
        skipped++;
    } else {
        before = nImages;
        IJ.redirectErrorMessages();
        open(input + name);
        if (nImages == before) {
            print(label + ": ERROR cannot be opened as an image");
            failed++;
            continue;
        }
        print(label + ": analysing");
        run("Analyze Crystals...", settings + " roi_manager=[Replace existing ROIs] save_results_to=[" + output + "]");
        error = call("microcrystalnet.fiji.AnalyzeCrystals.lastError");
        close();
        if (error != "") {
            print(label + ": ERROR " + error);
            failed++;
            continue;
        }
        analysed++;
    }
    lines = split(File.openAsString(output + base + File.separator + "class_summary.csv"), "\n");
    if (combined == "") combined = lines[0] + "\n";
    for (k = 1; k < lines.length; k++) combined = combined + lines[k] + "\n";
}
if (combined != "") File.saveString(combined, output + "batch_summary.csv");
print("MicroCrystalNet batch: " + analysed + " analysed, " + skipped + " skipped (done before), " + failed
    + " failed, of " + images.length + " images; results in " + output);
