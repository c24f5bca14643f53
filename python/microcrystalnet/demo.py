"""The demo: analyse a synthetic SEM scene and compare the result with its exact ground truth.

It runs the same path as ``microcrystalnet analyze`` on an image file (written with its
calibration, then read back), so it shows the whole product working on a fresh install. The
scene is synthetic (see :mod:`microcrystalnet.synth`): its scores say how the pipeline does on
synthetic crystals, not on real rocks.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import numpy as np
import tifffile

from .classes import CLASS_CODES, RESULT_CODES
from .classify import CrystalClassifier
from .config import AnalysisConfig
from .io import read_sem_image
from .io.owned_files import check_replaceable_files, own_file, record_own_files
from .io.outputs import write_analysis, write_json, write_label_tiff
from .metrics import match_instances, matched_pairs, pair_ious
from .pipeline import CrystalAnalysis, ProgressCallback, analyze_image
from .synth import SceneSpec, SyntheticScene, render_scene

DEMO_IMAGE_NAME = "synthetic_sem.tif"
TRUE_LABELS_NAME = "ground_truth_labels.tif"
TRUE_CLASSES_NAME = "ground_truth_classes.csv"
DEMO_REPORT_NAME = "demo_report.json"


def write_scene(scene: SyntheticScene, folder: Path) -> Path:
    """Write the scene's image (calibrated ImageJ TIFF), true labels and true classes."""
    folder.mkdir(parents=True, exist_ok=True)
    image_path = folder / DEMO_IMAGE_NAME
    size = scene.pixel_size_um
    tifffile.imwrite(image_path, scene.image, imagej=True, resolution=(1 / size, 1 / size), metadata={"unit": "um"})
    write_label_tiff(folder / TRUE_LABELS_NAME, scene.labels, size)
    lines = ["Crystal,Class"] + [f"{n},{code}" for n, code in enumerate(scene.crystal_classes, start=1)]
    (folder / TRUE_CLASSES_NAME).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return image_path


def compare_with_truth(analysis: CrystalAnalysis, scene: SyntheticScene) -> dict[str, Any]:
    """Segmentation F1 at IoU 0.5 and class agreement of the matched crystals."""
    match = match_instances(scene.labels, analysis.labels, 0.5)
    confusion = np.zeros((len(CLASS_CODES), len(RESULT_CODES)), int)
    for true_id, predicted_id in zip(*matched_pairs(pair_ious(scene.labels, analysis.labels), 0.5)):
        true_class = CLASS_CODES.index(scene.crystal_classes[true_id - 1])
        predicted_class = RESULT_CODES.index(str(analysis.rows[predicted_id - 1]["Class"]))
        confusion[true_class, predicted_class] += 1
    matched = int(confusion.sum())
    return {
        "note": "synthetic scene: these scores describe synthetic crystals, not real rocks",
        "segmentation": match.as_dict(),
        "classification": {
            "matched_crystals": matched,
            "agreement": float(np.trace(confusion) / matched) if matched else None,
            "unclear": int(confusion[:, -1].sum()),
            "confusion_rows_true_columns_predicted": {
                CLASS_CODES[t]: {RESULT_CODES[p]: int(confusion[t, p]) for p in range(len(RESULT_CODES))}
                for t in range(len(CLASS_CODES))},
        },
    }


def _written_by_an_earlier_demo(out_dir: Path, path: Path) -> bool:
    """Whether ``path`` is a file an earlier version's demo wrote into ``out_dir`` (before the
    ledger of :mod:`.io.owned_files`): its demo report is there, saying what it is."""
    try:
        report = json.loads((out_dir / DEMO_REPORT_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(report, dict) and str(report.get("note", "")).startswith("synthetic scene")


def run_demo(out_dir: Path, size_px: int = 2048, seed: int = 0, config: AnalysisConfig = AnalysisConfig(),
             classifier: CrystalClassifier | None = None, progress: ProgressCallback | None = None) -> dict[str, Any]:
    """Render a scene of ``size_px`` square covering 20.48 um (micrite at the paper's 10 nm/px
    for 2048 px) into ``out_dir/input/`` (image, true labels and classes), analyse it, write all
    outputs and ``demo_report.json``; return the report. Files there that the demo did not write
    are never replaced (``OutputFolderError``, before any work)."""
    out_dir = Path(out_dir)
    scene_files = [out_dir / "input" / name for name in (DEMO_IMAGE_NAME, TRUE_LABELS_NAME, TRUE_CLASSES_NAME)]
    earlier_demo = functools.partial(_written_by_an_earlier_demo, out_dir)
    check_replaceable_files([*scene_files, out_dir / DEMO_REPORT_NAME], earlier_version=earlier_demo)
    scene = render_scene(SceneSpec(shape=(size_px, size_px), pixel_size_um=20.48 / size_px, seed=seed))
    image_path = write_scene(scene, out_dir / "input")
    record_own_files(scene_files)
    image = read_sem_image(image_path, exclude_data_bar=config.input.exclude_data_bar)
    classifier = classifier or CrystalClassifier.load(config.classify.model)
    analysis = analyze_image(image, classifier, config, progress)
    result_folder = write_analysis(out_dir, analysis)
    report = {"scene": {"size_px": size_px, "pixel_size_um": scene.pixel_size_um, "seed": seed,
                        "n_crystals": scene.n_crystals},
              "results_folder": str(result_folder), **compare_with_truth(analysis, scene)}
    with own_file(out_dir / DEMO_REPORT_NAME, earlier_version=earlier_demo) as partial:
        write_json(partial, report)
    return report
