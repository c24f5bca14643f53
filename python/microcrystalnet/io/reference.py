"""Reading hand-drawn reference outlines of crystals (ground truth) into a label image.

References come in several forms, each with its own rule for what one crystal is:

- ``labels``: a label image (TIFF/PNG), 0 background, each crystal one value (e.g. our labels.tif).
- ``roiset``: ImageJ ROIs (RoiSet.zip or .roi), read by :mod:`.roiset`.
- ``binary_4conn``: white objects on black, touching objects separated by 1-px gaps; a crystal
  is a 4-connected component of ``mask > 0``.
- ``boundary_white``: white boundary lines between grains (gray or RGB(A); a pixel is boundary
  when the mean of its colour channels is above 127); a grain is a 4-connected component of the
  non-boundary pixels inside the image's outermost rows and columns, which join the grain next
  to them (lines drawn to one pixel short of the image edge still close their grains).
- ``via_json``: VGG Image Annotator 2 regions (polygons, rectangles, circles or ellipses), one
  per crystal, of the image named ``image_name``.

Every reader returns int32 (Y, X) labels, 0 background, crystals 1..N.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, get_args

import numpy as np
from scipy import ndimage as ndi

from ..polygon_fill import filled_polygon

if TYPE_CHECKING:
    from .image_file import SEMImage

Array = np.ndarray

ReferenceKind = Literal["labels", "roiset", "binary_4conn", "boundary_white", "via_json"]
REFERENCE_KINDS: tuple[str, ...] = get_args(ReferenceKind)


class ReferenceInputError(ValueError):
    """A reference (ground-truth) file cannot be used; the message names the file and the fix."""


class NotALabelImageError(ReferenceInputError):
    """A file read as a label image is another kind of drawing (a mask, boundary lines, colour):
    the command should say which of its options names the kind of ``path``."""

    def __init__(self, path: Path, message: str):
        super().__init__(message)
        self.path = path


def _read_pixels(path: Path) -> Array:
    import imageio.v3 as iio
    import tifffile

    if not path.is_file():
        raise ReferenceInputError(f"{path}: no such file")
    try:
        pixels = tifffile.imread(path) if path.suffix.lower() in (".tif", ".tiff") else iio.imread(path)
    except Exception as error:  # every reader raises its own types for broken files
        raise ReferenceInputError(f"{path}: cannot be read as an image ({type(error).__name__}: {error})") from error
    return np.asarray(pixels)


def _gray(pixels: Array) -> Array:
    """Mean of the colour channels for RGB(A), the values themselves for gray."""
    if pixels.ndim == 3 and pixels.shape[-1] in (3, 4):
        return pixels[..., :3].astype(np.float64).mean(axis=-1)
    return pixels.astype(np.float64)


def labels_from_binary_4conn(mask: Array) -> Array:
    """Crystals of a white-on-black mask: 4-connected components of ``mask > 0`` (int32 (Y, X))."""
    return ndi.label(_gray(mask) > 0)[0].astype(np.int32)


def labels_from_boundary_white(boundaries: Array) -> Array:
    """Grains between white boundary lines: 4-connected components of the pixels whose channel
    mean is at most 127 (int32 (Y, X)).

    The outermost rows and columns do not connect grains: they join the grain next to them.
    Hand-drawn lines often stop one pixel short of the image edge, and read literally the grains
    along that edge then form one crystal (measured: the real perovskite outlines of
    ``../shared/real-sem`` end one pixel short of the right and bottom edges, and 15 grains
    there read as one of 17 % of the image)."""
    from skimage.segmentation import expand_labels

    grains = _gray(boundaries) <= 127
    labels = np.zeros(grains.shape, np.int32)
    labels[1:-1, 1:-1] = ndi.label(grains[1:-1, 1:-1])[0]
    frame = np.ones(grains.shape, bool)
    frame[1:-1, 1:-1] = False
    nearest = expand_labels(labels, distance=1.5)  # 1.5: also across a corner
    labels[frame & grains] = nearest[frame & grains]
    return labels


def labels_from_via_json(path: str | Path, image_name: str, shape: tuple[int, int]) -> Array:
    """Regions drawn in VGG Image Annotator 2 for ``image_name`` (polygons, rectangles, circles,
    ellipses), filled in file order (a later region wins where two overlap), as int32 (Y, X)
    labels of ``shape``. A region of another shape (point, polyline) or without its coordinates
    is refused with its number, not read as an empty crystal."""
    path = Path(path)
    try:
        project = json.loads(path.read_text(encoding="utf-8"))
        entries = project.get("_via_img_metadata", project).values()
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError) as error:
        raise ReferenceInputError(f"{path}: not a VGG Image Annotator project file ({error})") from error
    entry = next((e for e in entries if isinstance(e, dict) and e.get("filename") == image_name), None)
    if entry is None:
        names = sorted(e.get("filename", "?") for e in entries if isinstance(e, dict))
        raise ReferenceInputError(f"{path}: no image named {image_name!r}; pass --image-name with one of "
                                  f"{', '.join(names[:10])}{' ...' if len(names) > 10 else ''}")
    labels = np.zeros(shape, np.int32)
    regions = entry.get("regions", [])
    regions = list(regions.values() if isinstance(regions, dict) else regions)
    outside = 0
    for number, region in enumerate(regions, start=1):
        attributes = region.get("shape_attributes", {}) if isinstance(region, dict) else {}
        try:
            rows, cols = via_region_pixels(attributes, shape)
        except (KeyError, TypeError, ValueError) as error:
            raise ReferenceInputError(f"{path}: region {number} of {image_name!r} cannot be read as a crystal "
                                      f"({error}); outline crystals as polygons, rectangles, circles or "
                                      "ellipses") from error
        outside += rows.size == 0
        labels[rows, cols] = number
    if outside:
        raise ReferenceInputError(_outside_the_image(path, outside, len(regions), shape))
    return labels


def _outside_the_image(path: Path, outside: int, total: int, shape: tuple[int, int]) -> str:
    return (f"{path}: {outside} of its {total} outlines lie wholly outside the {shape[1]} x {shape[0]} px image they "
            "are drawn on: they outline another (or a larger) image; compare them with the labels or image they "
            "were drawn on")


def via_region_pixels(attributes: dict, shape: tuple[int, int]) -> tuple[Array, Array]:
    """Rows and columns of the pixels inside one VGG Image Annotator 2 region (its
    ``shape_attributes``; image coordinates in pixels, x to the right, y down), within ``shape``.
    Polygons and rectangles are filled as scikit-image fills a polygon (vertices at pixel
    centres); circles and ellipses take the pixels whose centres lie inside (an ellipse's
    ``theta`` turns its x axis towards y, as VIA draws it)."""
    name = attributes.get("name", "polygon")
    if name == "polygon":
        xs, ys = (np.asarray(attributes[key], float) for key in ("all_points_x", "all_points_y"))
        if xs.ndim != 1 or xs.shape != ys.shape or len(xs) < 3:
            raise ValueError(f"a polygon needs as many x as y coordinates, at least 3, got {xs.size} and {ys.size}")
        return filled_polygon(ys, xs, shape=shape)
    if name == "rect":
        x, y, width, height = (float(attributes[key]) for key in ("x", "y", "width", "height"))
        return filled_polygon(np.array([y, y, y + height, y + height]), np.array([x, x + width, x + width, x]),
                              shape=shape)
    if name in ("circle", "ellipse"):
        cx, cy = float(attributes["cx"]), float(attributes["cy"])
        rx, ry = ((float(attributes["r"]),) * 2 if name == "circle"
                  else (float(attributes["rx"]), float(attributes["ry"])))
        theta = float(attributes.get("theta", 0.0))
        if not (rx > 0 and ry > 0):
            raise ValueError(f"a {name} needs positive radii, got {rx:g} and {ry:g}")
        reach = max(rx, ry)
        top, bottom = max(int(np.floor(cy - reach)), 0), min(int(np.ceil(cy + reach)) + 1, shape[0])
        left, right = max(int(np.floor(cx - reach)), 0), min(int(np.ceil(cx + reach)) + 1, shape[1])
        dy, dx = np.mgrid[top:bottom, left:right].astype(float)
        dy, dx = dy - cy, dx - cx
        along = dx * np.cos(theta) + dy * np.sin(theta)
        across = -dx * np.sin(theta) + dy * np.cos(theta)
        rows, cols = np.nonzero((along / rx) ** 2 + (across / ry) ** 2 <= 1)
        return rows + top, cols + left
    raise ValueError(f"its shape is a {name}, which outlines no area")


#: the drawings a label-image reader can mistake, as its refusals name them
OTHER_DRAWING_KINDS = ("binary_4conn (white crystals on black, touching ones separated by 1-px gaps) or "
                       "boundary_white (white lines between grains)")


def read_label_image(path: str | Path) -> Array:
    """A label image file (TIFF/PNG): int32 (Y, X), 0 background; RGB files are refused."""
    path = Path(path)
    pixels = _read_pixels(path)
    if pixels.ndim != 2 or pixels.dtype.kind not in "ui":
        raise NotALabelImageError(path, f"{path}: a label image must be one 2D integer image, got {pixels.dtype} "
                                        f"{pixels.shape}; for a mask or boundary drawing name its kind: "
                                        f"{OTHER_DRAWING_KINDS}")
    foreground = pixels[pixels != 0]
    if foreground.size and (foreground == foreground[0]).all():  # one value (no sort of the whole image)
        n_regions = ndi.label(pixels > 0)[1]
        if n_regions > 1:  # one crystal in many pieces: a mask (e.g. Fiji's Convert to Mask, 0/255)
            raise NotALabelImageError(path, f"{path}: one gray value ({foreground[0]}) marks {n_regions} separate "
                                            f"regions, so read as a label image (one value per crystal) it would be "
                                            f"one crystal; a mask names its kind: {OTHER_DRAWING_KINDS}")
    return pixels.astype(np.int32)


def read_reference_labels(path: str | Path, kind: ReferenceKind | None = None, shape: tuple[int, int] | None = None,
                          image_name: str | None = None) -> Array:
    """Crystals of a reference file as int32 (Y, X) labels.

    ``kind``: one of :data:`REFERENCE_KINDS`; None: ``roiset`` for .zip/.roi files, else
    ``labels``. ``shape`` (Y, X) is needed for ROIs and polygons, which carry no image size;
    ``image_name`` names the image inside a ``via_json`` project.
    """
    path = Path(path)
    kind = kind or ("roiset" if path.suffix.lower() in (".zip", ".roi") else "labels")
    if kind not in REFERENCE_KINDS:
        raise ReferenceInputError(f"{path}: unknown reference kind {kind!r}; use one of {', '.join(REFERENCE_KINDS)}")
    if kind in ("roiset", "via_json"):
        if shape is None:
            raise ReferenceInputError(f"{path}: {kind} outlines carry no image size; compare them with a label "
                                      "image, whose size is used")
        if kind == "roiset":
            from .roiset import read_reference_crystals

            crystals = read_reference_crystals(path, shape)
            outside = crystals.skipped.get("outside the image", 0)
            if outside:
                raise ReferenceInputError(_outside_the_image(path, outside, len(crystals.names) + outside, shape))
            return crystals.labels
        if not image_name:
            raise ReferenceInputError(f"{path}: a VGG Image Annotator file holds many images; name one with "
                                      "--image-name")
        if not path.is_file():
            raise ReferenceInputError(f"{path}: no such file")
        return labels_from_via_json(path, image_name, shape)
    if kind == "labels":
        return read_label_image(path)
    pixels = _read_pixels(path)
    return labels_from_binary_4conn(pixels) if kind == "binary_4conn" else labels_from_boundary_white(pixels)


def _has_own_shape(path: Path, kind: str | None) -> bool:
    return (kind or ("roiset" if path.suffix.lower() in (".zip", ".roi") else "labels")) not in ("roiset", "via_json")


def read_label_pair(prediction: str | Path, reference: str | Path, *, prediction_kind: ReferenceKind | None = None,
                    reference_kind: ReferenceKind | None = None, image_name: str | None = None,
                    rows: int | None = None, shape: tuple[int, int] | None = None) -> tuple[Array, Array]:
    """Predicted and reference crystals as int32 (Y, X) labels over their common area.

    Either side may be outlines without an image size (RoiSet.zip, VIA polygons): they are drawn
    on the other side's size, or on ``shape`` (Y, X; the image's, which a side with a size of its
    own must agree with) where both are. Labels are cut to the columns both have (a ground truth may be
    narrower than its image) and, with ``rows``, to rows 0..rows-1 (leaving out a data bar).
    Sides whose sizes differ by more than a few pixels (:data:`SIZE_TOLERANCE`) are refused
    (``ReferenceInputError``): they are not of the same image.
    """
    sides = ((Path(prediction), prediction_kind), (Path(reference), reference_kind))
    own = [read_reference_labels(path, kind) if _has_own_shape(path, kind) else None for path, kind in sides]
    for (path, _), labels in zip(sides, own):
        if labels is not None and shape is not None and not _about_the_same_size(labels.shape, shape):
            raise ReferenceInputError(f"{path} is {labels.shape[1]} x {labels.shape[0]} px but the image given is "
                                      f"{shape[1]} x {shape[0]} px: they are not of the same image")
    drawn_on = next((labels.shape for labels in own if labels is not None), shape)
    if drawn_on is None:
        raise ReferenceInputError(f"{prediction} and {reference} both are outlines without an image size; give the "
                                  "image they outline (compare --image), or compare a label image or mask instead of "
                                  "one of them (e.g. the labels.tif of a result folder)")
    predicted, true = (labels if labels is not None else read_reference_labels(path, kind, drawn_on, image_name)
                       for (path, kind), labels in zip(sides, own))
    if not _about_the_same_size(predicted.shape, true.shape):
        raise ReferenceInputError(
            f"{prediction} is {predicted.shape[1]} x {predicted.shape[0]} px and {reference} "
            f"{true.shape[1]} x {true.shape[0]} px: they do not outline the same image (sizes may differ by "
            f"{SIZE_TOLERANCE:.0%} or {SIZE_TOLERANCE_PX} px at most); compare the results of the image the "
            "reference was drawn on")
    height = min(predicted.shape[0], true.shape[0], rows or predicted.shape[0])
    width = min(predicted.shape[1], true.shape[1])
    return predicted[:height, :width], true[:height, :width]


#: how far the two sides of a comparison may differ in width or height (outlines drawn a few pixels
#: short of an image's edge); beyond both, they are not of the same image
SIZE_TOLERANCE = 0.02
SIZE_TOLERANCE_PX = 4


def _about_the_same_size(shape_a: tuple[int, ...], shape_b: tuple[int, ...]) -> bool:
    return all(abs(a - b) <= max(SIZE_TOLERANCE_PX, SIZE_TOLERANCE * max(a, b)) for a, b in zip(shape_a, shape_b))


@dataclass
class ReferenceImage:
    """One image of a reference set with its reference crystals, both cut to the part they share
    (rows of a data bar left out): ``pixels`` as read (Y, X), ``labels`` int32 (Y, X)."""

    material: str
    path: Path
    pixels: Array
    labels: Array
    pixel_size_um: float | None
    median_diameter_px: float | None


def read_reference_entry(entry: dict, root: str | Path) -> tuple[SEMImage, Array]:
    """One entry of a reference set (see :func:`read_reference_set`; paths relative to ``root``):
    the image as read, with its own calibration, and its reference labels (int32 (Y, X)), both cut
    to the rows and columns they share (the rows of a data bar left out)."""
    from .image_file import read_sem_image

    root = Path(root)
    image = read_sem_image(root / entry["image"], exclude_data_bar=False)
    labels = read_reference_labels(root / entry["ground_truth"], entry["ground_truth_kind"],
                                   image.pixels.shape, entry.get("image_name"))
    rows = min(entry.get("analysed_rows") or image.pixels.shape[0], labels.shape[0], image.pixels.shape[0])
    columns = min(image.pixels.shape[1], labels.shape[1])
    image.pixels = image.pixels[:rows, :columns]
    return image, labels[:rows, :columns]


def read_reference_set(manifest: str | Path) -> Iterator[ReferenceImage]:
    """The images of a reference set: a JSON list of entries with ``image``, ``ground_truth``,
    ``ground_truth_kind``, optional ``image_name``, ``analysed_rows``, ``dataset``,
    ``pixel_size_um`` and ``median_diameter_px``, paths relative to the manifest (the layout of
    the project's real SEM development set)."""
    manifest = Path(manifest)
    try:
        entries = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ReferenceInputError(f"{manifest}: cannot read the reference set ({error})") from error
    for entry in entries:
        image, labels = read_reference_entry(entry, manifest.parent)
        yield ReferenceImage(entry.get("dataset", ""), image.path, image.pixels, labels,
                             entry.get("pixel_size_um"), entry.get("median_diameter_px"))
