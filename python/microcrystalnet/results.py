"""The per-crystal results table and the per-image class statistics.

One row per crystal, in label order, with the columns of :data:`RESULT_COLUMNS`: the crystal's
number and ROI name, its class (``unclear`` when the top probability is below the threshold),
the classifier's confidence (top probability) and the four class probabilities, then the
ImageJ measurements of :mod:`microcrystalnet.measure`, and which segmenter found it. The same
rows feed the CSV, the Fiji Results table and the summary.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .classes import CLASS_CODES, RESULT_CODES, UNCLEAR, class_by_code
from .measure import MEASUREMENT_COLUMNS

PROBABILITY_COLUMNS: tuple[str, ...] = tuple(f"Prob_{code}" for code in CLASS_CODES)
RESULT_COLUMNS: tuple[str, ...] = ("Crystal", "Name", "Class", "Confidence", *PROBABILITY_COLUMNS,
                                   *MEASUREMENT_COLUMNS, "Segmenter")


def crystal_name(number: int, class_code: str) -> str:
    """ROI name of a crystal, e.g. ``0001-RES`` (``RA/SA`` is written ``RA-SA`` in names)."""
    return f"{number:04d}-{class_by_code(class_code).file_code}"


def segmenter_label(segmenter: dict[str, object]) -> str:
    """Short name of what segmented, for the Segmenter column: ``watershed``, e.g.
    ``learned default c8326706dd07`` (model file name, sha256's first 12 hex digits) or
    ``sam prompt vit_b ec2df6273261`` (checkpoint sha256, first 12 hex digits)."""
    if segmenter.get("backend") == "learned":
        return f"learned {Path(str(segmenter['model'])).name} {str(segmenter['sha256'])[:12]}"
    if segmenter.get("backend") != "sam":
        return str(segmenter.get("backend", "unknown"))
    return f"sam {segmenter['mode']} {segmenter['model_type']} {str(segmenter['sha256'])[:12]}"


def results_rows(probabilities: np.ndarray, measurements: Sequence[dict[str, float]],
                 segmenter: str = "watershed", unclear_below: float = 0.0) -> list[dict[str, object]]:
    """Rows of the results table; ``probabilities``: (N, 4) in ``CLASS_CODES`` order. A crystal
    whose top probability is below ``unclear_below`` gets the class ``unclear``."""
    if len(probabilities) != len(measurements):
        raise ValueError(f"{len(probabilities)} classifications for {len(measurements)} measured crystals")
    rows = []
    for number, (probability, measured) in enumerate(zip(probabilities, measurements), start=1):
        best = int(np.argmax(probability))
        code = CLASS_CODES[best] if probability[best] >= unclear_below else UNCLEAR.code
        row: dict[str, object] = {
            "Crystal": number,
            "Name": crystal_name(number, code),
            "Class": code,
            "Confidence": float(probability[best]),
        }
        row.update({column: float(p) for column, p in zip(PROBABILITY_COLUMNS, probability)})
        row.update({column: float(measured[column]) for column in MEASUREMENT_COLUMNS})
        row["Segmenter"] = segmenter
        rows.append(row)
    return rows


def class_statistics(rows: Sequence[dict[str, object]]) -> dict[str, dict[str, float]]:
    """Per class (and unclear): count, fraction of crystals, mean Area, mean Feret, mean Confidence."""
    statistics = {}
    total = len(rows)
    for code in RESULT_CODES:
        members = [row for row in rows if row["Class"] == code]
        statistics[code] = {
            "count": len(members),
            "fraction": len(members) / total if total else 0.0,
            "mean_area": float(np.mean([row["Area"] for row in members])) if members else float("nan"),
            "mean_feret": float(np.mean([row["Feret"] for row in members])) if members else float("nan"),
            "mean_confidence": float(np.mean([row["Confidence"] for row in members])) if members else float("nan"),
        }
    return statistics
