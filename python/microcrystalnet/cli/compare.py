"""``microcrystalnet compare``: score a segmentation against reference outlines (a petrographer's own)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, add_quiet_option, log, positive_int

#: the kinds of io.reference.REFERENCE_KINDS, repeated so --help needs no numerical library
_KINDS = ("labels", "roiset", "binary_4conn", "boundary_white", "via_json")
#: found crystals touching the image edge, where none of the reference does, from which ``compare``
#: suggests --exclude-border (fewer can be chance on a sparse image)
MANY_FOUND_ON_EDGE = 3


def add_parsers(commands: argparse._SubParsersAction) -> None:
    compare = commands.add_parser(
        "compare", help="score crystals found (labels.tif or RoiSet.zip) against reference outlines",
        description="Score a segmentation against reference outlines: F1, precision and recall at IoU 0.5, mean "
                    "IoU of matched crystals, count error, and the size-distribution difference (Kolmogorov-"
                    "Smirnov statistic on equivalent diameters). Either side: a label image (TIFF/PNG, e.g. "
                    "labels.tif of a result folder) or ImageJ ROIs (RoiSet.zip).")
    compare.add_argument("prediction", type=Path, metavar="PREDICTION", help="crystals found: label image or RoiSet.zip")
    compare.add_argument("reference", type=Path, metavar="REFERENCE", help="reference outlines")
    compare.add_argument("--reference-kind", choices=_KINDS,
                         help="how REFERENCE draws crystals: labels (label image), roiset, binary_4conn (white "
                              "objects, 1-px gaps between touching ones), boundary_white (white lines between "
                              "grains), via_json (VGG Image Annotator polygons, rectangles, circles, ellipses; needs --image-name); default: "
                              "roiset for .zip/.roi, else labels")
    compare.add_argument("--prediction-kind", choices=_KINDS, help="how PREDICTION draws crystals (default as above)")
    compare.add_argument("--image-name", metavar="NAME", help="the image's file name inside a via_json file")
    compare.add_argument("--image", type=Path, metavar="IMAGE",
                         help="the image the crystals were outlined on: its size, needed where both sides are "
                              "outlines without one (RoiSet.zip, via_json)")
    compare.add_argument("--rows", type=positive_int, metavar="N",
                         help="score rows 0..N-1 only (leave out the instrument's data bar)")
    compare.add_argument("--out", type=Path, metavar="FILE", help="also write the scores: .json or .csv")
    add_quiet_option(compare)
    compare.set_defaults(run=run_compare)


def run_compare(arguments: argparse.Namespace) -> int:
    if arguments.out is not None and arguments.out.suffix.lower() not in (".json", ".csv"):
        log.error("--out must end in .json or .csv, got %s", arguments.out)
        return EXIT_USAGE
    if "via_json" in (arguments.reference_kind, arguments.prediction_kind) and not arguments.image_name:
        log.error("via_json outlines hold several images: name the image with --image-name")
        return EXIT_USAGE
    from ..io import ImageInputError, read_sem_image
    from ..io.outputs import write_json, write_results_csv
    from ..io.owned_files import check_replaceable_files, own_file
    from ..io.reference import NotALabelImageError, ReferenceInputError, read_label_pair
    from ..io.roiset import RoiInputError
    from ..metrics import score_segmentation
    from ..notices import EXCLUDE_BORDER_CRYSTALS, both_wordings

    earlier_scores = _earlier_scores(arguments.out)
    if arguments.out is not None:  # never someone else's file: refused before any work
        check_replaceable_files([arguments.out], earlier_version=earlier_scores)
    try:
        shape = read_sem_image(arguments.image, exclude_data_bar=False).pixels.shape if arguments.image else None
        predicted, true = read_label_pair(arguments.prediction, arguments.reference,
                                          prediction_kind=arguments.prediction_kind,
                                          reference_kind=arguments.reference_kind, image_name=arguments.image_name,
                                          rows=arguments.rows, shape=shape)
    except NotALabelImageError as error:
        side = "--reference-kind" if error.path == arguments.reference else "--prediction-kind"
        log.error("%s (%s)", error, side)
        return EXIT_SOME_FAILED
    except (ReferenceInputError, RoiInputError, ImageInputError) as error:
        log.error("%s", error)
        return EXIT_SOME_FAILED
    scores = {"prediction": str(arguments.prediction), "reference": str(arguments.reference),
              "rows": predicted.shape[0], "columns": predicted.shape[1],
              **score_segmentation(true, predicted).as_dict()}
    print(f"reference {scores['n_true']} crystals, found {scores['n_predicted']}: F1 {scores['f1']:.3f} at IoU 0.5 "
          f"(precision {scores['precision']:.3f}, recall {scores['recall']:.3f}), mean matched IoU "
          f"{scores['mean_matched_iou']:.3f}, count error {scores['count_error']:+d} "
          f"({scores['relative_count_error']:+.1%}), size distribution KS {scores['size_ks_statistic']:.3f}")
    if scores["n_true_touching_edge"] == 0 and scores["n_predicted_touching_edge"] >= MANY_FOUND_ON_EDGE:
        log.warning("no reference crystal touches the image edge, but %d found ones do (false positives where "
                    "unmatched): if your outlines leave out the crystals cut by the edge, %s to measure the same "
                    "way", scores["n_predicted_touching_edge"], both_wordings(EXCLUDE_BORDER_CRYSTALS))
    if arguments.out is not None:
        with own_file(arguments.out, earlier_version=earlier_scores) as partial:
            if arguments.out.suffix.lower() == ".json":
                write_json(partial, scores)
            else:
                write_results_csv(partial, [scores], columns=list(scores))
        log.info("scores written to %s", arguments.out)
    return EXIT_OK


def _earlier_scores(out: Path | None):
    """How a scores file of ``compare --out`` that a version before the ledger wrote is recognised."""
    from ..io.owned_files import json_object_with, table_with_header

    if out is not None and out.suffix.lower() == ".csv":
        return table_with_header("prediction,reference,rows,columns,")
    return json_object_with("prediction", "reference", "f1")
