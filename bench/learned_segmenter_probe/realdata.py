"""Real dev set loader (reads ../shared/real-sem in place; never copies). Same rules as bench/bench_synth_realism.py."""
import json
from pathlib import Path
import numpy as np, tifffile
from scipy import ndimage as ndi
from skimage import io
from skimage.draw import polygon as fill_polygon
ROOT = Path(__file__).resolve().parents[3] / "shared" / "real-sem"  # ../shared beside the repository

def _gray(path):
    image = tifffile.imread(path) if path.suffix.lower() in (".tif", ".tiff") else io.imread(path)
    if image.ndim == 3:
        image = image[..., :3].mean(axis=-1)
    return image.astype(np.float64)

def _via_labels(json_path, image_name, shape):
    metadata = json.loads(json_path.read_text())["_via_img_metadata"]
    labels = np.zeros(shape, np.int32)
    regions = [r for e in metadata.values() if e["filename"] == image_name for r in e["regions"]]
    for i, region in enumerate(regions, start=1):
        p = region["shape_attributes"]
        rr, cc = fill_polygon(p["all_points_y"], p["all_points_x"], shape)
        labels[rr, cc] = i
    return labels

def real_images():
    for e in json.loads((ROOT / "manifest.json").read_text()):
        image = _gray(ROOT / e["image"]); tp = ROOT / e["ground_truth"]
        if e["ground_truth_kind"] == "binary_4conn":
            labels = ndi.label(_gray(tp) > 0)[0]
        elif e["ground_truth_kind"] == "boundary_white":
            labels = ndi.label(~(_gray(tp) > 127))[0]
            image = image[:labels.shape[0], :labels.shape[1]]
        else:
            labels = _via_labels(tp, e["image_name"], image.shape)
        rows = e["analysed_rows"] or image.shape[0]
        yield e["dataset"], e["median_diameter_px"], image[:rows], labels[:rows]
