// MicroCrystalNet: analyse the SEM image in front.
//
// Crystals go to the ROI Manager (named 0001-RES, 0002-AA, ..., with the image title in front
// when added to existing ROIs: scene.tif:0001-RES; outlined in their class colour), measurements
// to the "MicroCrystalNet Results" table (in the image's unit), counts per class to the
// "MicroCrystalNet Summary" table, and a colour legend to the Log.
//
// Adapt the settings below; every one is also a field of Plugins > MicroCrystalNet >
// Analyze Crystals... (record it with Plugins > Macros > Record... to get this line).
//   classifier: reference-2023-11-19 (the authors' released classifier) or the path of a model you trained,
//       e.g. classifier=[/data/run1/model.keras] (microcrystalnet train ...; its .json description beside it)
//   unclear_below: a crystal whose most probable class has a lower probability is labelled 'unclear'
//       (its own colour, yellow); 0 turns this off
//   min_crystal_area / max_crystal_area: crystal area limits in um^2 (images without
//       calibration: 10 nm/px is assumed for these limits, results stay in pixels)
//   crystal_size: the typical crystal diameter in the image's unit (px without calibration); 0: automatic
//       (2 um on calibrated images unless the crystals look far from that, else estimated)
//   crystals: bright or dark against what surrounds them; auto: the shipped Learned segmenter judges each image
//   exclude_crystals_on_border: drop crystals cut by the image border
//   exclude_sem_data_bar: leave out the instrument's information bar at the bottom
//   preprocessing: the paper's chain, steps in order (empty: none); n2v_model: a Noise2Void model
//       (microcrystalnet n2v train ...); without one the n2v step is skipped
//   segmenter: Default (the settings file's, else Learned), Watershed, Learned (a trained network)
//       or SAM (Segment Anything); segmenter_model: the Learned segmenter's model (default: the shipped one,
//       or the path of one from microcrystalnet train-segmenter)
//   settings_file: optional JSON settings, e.g. written by microcrystalnet tune-sam
//   roi_manager: [Add to existing ROIs] keeps what the ROI Manager holds; [Replace existing ROIs] empties it first
//       (and the overlay and tables)
//   outputs: where the crystals go besides the tables: [ROI Manager], Overlay (outlines and a class legend on
//       the image), [Label image] (crystal n has the value n), [ROI Manager + Overlay], [ROI Manager + Label image],
//       [Overlay + Label image] or All
//   fill_imagej_results_table: add this word to also fill ImageJ's own Results table (for Analyze > Distribution...)
//   save_results_to: a folder for RoiSet.zip, results.csv, ... (empty: do not save)

if (nImages == 0) exit("Open an SEM image first.");
run("Analyze Crystals...", "classifier=reference-2023-11-19 unclear_below=0.5 min_crystal_area=0.25 max_crystal_area=400 "
    + "crystal_size=0 crystals=auto exclude_sem_data_bar preprocessing=[nlm,n2v,unsharp,opening,closing] n2v_model=[] "
    + "segmenter=Default segmenter_model=default settings_file=[] roi_manager=[Add to existing ROIs] outputs=[ROI Manager] save_results_to=[]");
error = call("microcrystalnet.fiji.AnalyzeCrystals.lastError");
if (error != "") exit("MicroCrystalNet could not analyse this image:\n" + error);
