// MicroCrystalNet: analyse every SEM image of a folder.
//
// For each image, <output>/<image name>/ receives RoiSet.zip, results.csv, class_summary.csv,
// labels.tif, overlay.png and summary.json; <output>/batch_summary.csv combines the class counts,
// fractions and mean sizes of all images (one row per image and class; its Unit column says
// whether the sizes are in um or, for an image without pixel size, in pixels).
//
// Resumable: an image whose result folder already holds summary.json is skipped, so a batch
// that was interrupted continues where it stopped. An image that cannot be opened or analysed
// is reported in the Log and the batch goes on with the next one; at the end, if any failed,
// call("microcrystalnet.fiji.AnalyzeCrystals.lastError") names them and ImageJ run with -batch
// exits with status 1 (only that: an ImageJ with its window, or hosted by a script or a Python
// session, is never ended).
//
// Interactive: Plugins > Macros > Run... asks for the two folders.
// Without windows (paths with spaces in brackets, as in every ImageJ option):
//   ImageJ -batch batch_analyze_folder.ijm "input=[/data/sem images] output=[/data/results] settings=[/data/limits.json]"
// (plain ImageJ 1.x needs an X display for its dialogs; on a server use xvfb-run, or Fiji --headless)
// The Python that analyses: Plugins > MicroCrystalNet > Settings..., or for headless runs the
// environment variable MICROCRYSTALNET_PYTHON (the path 'scripts/mcn --python-path' prints).
//
// settings= (optional): a MicroCrystalNet settings file (JSON), e.g. crystal area limits in um^2:
//   {"segment": {"min_crystal_area_um2": 0.5, "max_crystal_area_um2": 20}, "classify": {"unclear_below": 0.6}}
// or one written by 'microcrystalnet tune-sam'. What it leaves out takes MicroCrystalNet's defaults.
// The fields below apply on top of it (the Analyze Crystals... fields; classifier= also takes the path
// of a model you trained: classifier=[/data/run1/model.keras]):
fields = "classifier=reference-2023-11-19 exclude_sem_data_bar preprocessing=[nlm,n2v,unsharp,opening,closing] "
    + "n2v_model=[] segmenter=Default";

extensions = newArray(".tif", ".tiff", ".png", ".jpg", ".jpeg");

function argumentValue(arguments, key) {
    // ImageJ's own option parsing: key=value, or key=[value with spaces]
    return call("ij.Macro.getValue", arguments + " ", key, "");
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

function stop(message) {
    print("MicroCrystalNet batch: ERROR " + message);
    call("microcrystalnet.fiji.AnalyzeCrystals.endBatch", message);
    exit(message);
}

arguments = getArgument();
input = argumentValue(arguments, "input");
output = argumentValue(arguments, "output");
settingsFile = argumentValue(arguments, "settings");
if (input == "") input = getDirectory("Choose the folder of SEM images");
if (output == "") output = getDirectory("Choose the folder for the results");
if (!File.isDirectory(input))
    stop("the input folder " + input + " does not exist (write a path with spaces in brackets: input=[/data/sem images])");
if (settingsFile != "" && !File.exists(settingsFile))
    stop("the settings file " + settingsFile + " does not exist");
input = withSeparator(input);
output = withSeparator(output);
File.makeDirectory(output);
if (!File.isDirectory(output)) stop("the output folder " + output + " cannot be created");
settings = fields + " settings_file=[" + settingsFile + "]";

setBatchMode(true);
names = getFileList(input);
images = newArray(0);
for (i = 0; i < names.length; i++)
    if (isImageName(names[i])) images = Array.concat(images, names[i]);

combined = "";
failures = "";
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
            failures = failures + " " + name;
            continue;
        }
        print(label + ": analysing");
        // outlines on each image's overlay only: the ROI Manager and what you keep in it are left alone
        run("Analyze Crystals...", settings + " roi_manager=[Replace existing ROIs] outputs=Overlay save_results_to=["
            + output + "]");
        error = call("microcrystalnet.fiji.AnalyzeCrystals.lastError");
        close();
        if (error != "") {
            print(label + ": ERROR " + error);
            failed++;
            failures = failures + " " + name;
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
if (failed > 0) call("microcrystalnet.fiji.AnalyzeCrystals.endBatch", failed + " of " + images.length + " images failed:" + failures);
else call("microcrystalnet.fiji.AnalyzeCrystals.endBatch", "");
