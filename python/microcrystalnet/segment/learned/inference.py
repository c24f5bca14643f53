"""Crystals of an image from a trained segmenter: rescale to the model's working scale,
predict class probabilities tile by tile, grow interior seeds by watershed, scale back.

The network sees every image at its working scale (the typical crystal spans
``model.working_diameter_px`` pixels), so one model serves any magnification once the crystal
diameter of the image is known (given, or estimated: :func:`refined_crystal_diameter_px`).
"""

from __future__ import annotations

import logging
import math
import weakref

import numpy as np
from scipy import ndimage as ndi
from skimage.segmentation import watershed
from skimage.transform import rescale, resize

from ...allocator import freed_memory_kept
from ...frameworks import import_torch
from .model_file import SegmenterModel, WatershedThresholds
from .network import CrystalUNet

log = logging.getLogger(__name__)

torch = import_torch()

Array = np.ndarray

#: tiles the network sees at once, px (working scale); memory grows with its square
TILE_PX = 1024
#: context around each tile, px (working scale): the U-Net (depth 4) sees about 92 px to each
#: side, so tiles overlap by more than that and match the whole-image prediction (with 48 px the
#: trained model's probabilities differed by up to 0.07 at tile seams)
TILE_MARGIN_PX = 96
#: an image whose standard deviation at working scale (after normalisation) is below this has no
#: structure at the crystal scale (noise averages out: 0.017 for pure noise at a 200-px crystal
#: size; the real images of the development set: 0.08-0.25): no crystals, instead of one
#: image-wide "crystal"
MIN_WORKING_CONTRAST = 0.04
#: gray levels are scaled to these percentiles of the image
NORMALIZE_PERCENTILES = (1.0, 99.8)


def normalized(image: Array) -> Array:
    """``image`` as float32 with its 1st and 99.8th percentiles at 0 and 1 (the training convention)."""
    low, high = np.percentile(image, NORMALIZE_PERCENTILES)
    return ((image.astype(np.float32) - low) / max(float(high - low), 1e-6)).astype(np.float32)


def tile_spans(size_px: int, *, tile_px: int, margin_px: int, multiple: int = 1) -> list[tuple[int, int]]:
    """The parts (start, stop) of one side of ``size_px`` whose probabilities each tile gives: the
    whole side where it fits in one tile, else the fewest equal parts (each a whole number of
    ``multiple``) that fit in ``tile_px`` with ``margin_px`` of context on each side. Fixed steps of
    ``tile_px - 2 margin_px`` cut a 1024-px image into four tiles of 1.4 times its pixels; equal
    parts waste the least on overlaps (BENCHMARKS.md, "Learned segmenter: speed")."""
    if size_px <= tile_px:
        return [(0, size_px)]
    count = math.ceil(size_px / max(tile_px - 2 * margin_px, multiple))
    step = math.ceil(size_px / count / multiple) * multiple
    return [(start, min(start + step, size_px)) for start in range(0, size_px, step)]


#: each network's copy for prediction, with the versions of the weights it was made from
_INFERENCE_NETWORKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def inference_network(network: CrystalUNet) -> CrystalUNet:
    """``network``'s copy for prediction (:meth:`~.network.CrystalUNet.fused_for_inference`),
    made once per network and made again when any of its tensors changed (training,
    ``load_state_dict``, a tensor replaced: torch counts each tensor's changes in place; a network
    made under ``torch.inference_mode`` keeps no counts and is copied every time). The copy takes
    0.04-0.13 s and was made four times per image (two orientations, the contrast judgement's two
    tiles; BENCHMARKS.md, "Learned segmenter: speed")."""
    tensors = (*network.parameters(), *network.buffers())
    if any(tensor.is_inference() for tensor in tensors):  # made under torch.inference_mode: no counts kept
        return network.fused_for_inference()
    versions = tuple((id(tensor), tensor._version) for tensor in tensors)
    made = _INFERENCE_NETWORKS.get(network)
    if made is None or made[0] != versions:
        made = versions, network.fused_for_inference()
        _INFERENCE_NETWORKS[network] = made
    return made[1]


#: from this many tiles on, :func:`class_probabilities` says in the log how far it is
MANY_TILES = 64


@torch.no_grad()
def class_probabilities(model: SegmenterModel, image: Array, *, tile_px: int = TILE_PX,
                        margin_px: int = TILE_MARGIN_PX, pass_name: str = "") -> Array:
    """Softmax probabilities (3, Y, X) float32 of a normalised float image at working scale,
    computed in tiles of ``tile_px`` with ``margin_px`` of context on each side (by the model's
    network :meth:`~.network.CrystalUNet.fused_for_inference`, :func:`inference_network`, on the
    device the network is on). The image is padded once to the network's size multiple, so tiles
    see what the whole image would show them. ``pass_name``: which pass this is, in the log
    (from :data:`MANY_TILES` tiles on, it says how far the network is)."""
    network = inference_network(model.network)
    device = next(network.parameters()).device
    multiple = network.size_multiple
    height, width = image.shape
    pad_y, pad_x = -height % multiple, -width % multiple
    mode = "reflect" if min(height, width) > max(pad_y, pad_x) else "edge"
    padded = np.pad(image, ((0, pad_y), (0, pad_x)), mode=mode)
    result = np.empty((3, *padded.shape), np.float32)
    rows = tile_spans(padded.shape[0], tile_px=tile_px, margin_px=margin_px, multiple=multiple)
    columns = tile_spans(padded.shape[1], tile_px=tile_px, margin_px=margin_px, multiple=multiple)
    said = 0  # quarters of the tiles said in the log, where there are many (minutes of work on a CPU)
    with freed_memory_kept():  # each layer's activations reuse the last tile's memory (1.1-1.4x faster)
        for row_index, (top, bottom) in enumerate(rows):
            if len(rows) * len(columns) >= MANY_TILES and row_index * 4 >= (said + 1) * len(rows):
                said = row_index * 4 // len(rows)
                log.info("crystal network%s: %d of %d tiles done", f", {pass_name}" if pass_name else "",
                         row_index * len(columns), len(rows) * len(columns))
            for left, right in columns:
                y0, x0 = max(top - margin_px, 0), max(left - margin_px, 0)
                y1, x1 = min(bottom + margin_px, padded.shape[0]), min(right + margin_px, padded.shape[1])
                tile = np.ascontiguousarray(padded[y0:y1, x0:x1])
                logits = network(torch.from_numpy(tile)[None, None].to(device))
                probabilities = torch.softmax(logits, 1)[0].cpu().numpy()
                result[:, top:bottom, left:right] = probabilities[:, top - y0:bottom - y0, left - x0:right - x0]
    return result[:, :height, :width]


def rotation_averaged_probabilities(model: SegmenterModel, image: Array, *, tile_px: int = TILE_PX,
                                    margin_px: int = TILE_MARGIN_PX) -> Array:
    """:func:`class_probabilities` of ``image`` averaged with those of the image turned by 180
    degrees (test-time augmentation: the network's orientation-dependent mistakes partly cancel;
    on held-out real images +0.01-0.02 F1 for twice the network's time, BENCHMARKS.md)."""
    with freed_memory_kept():  # for both passes: the second reuses the first one's memory
        upright = class_probabilities(model, image, tile_px=tile_px, margin_px=margin_px, pass_name="pass 1 of 2")
        turned = class_probabilities(model, np.ascontiguousarray(image[::-1, ::-1]), tile_px=tile_px,
                                     margin_px=margin_px, pass_name="pass 2 of 2")[:, ::-1, ::-1]
    return (upright + turned) / 2


def crystal_instances(probabilities: Array, *, thresholds: WatershedThresholds = WatershedThresholds(),
                      crystal_diameter_px: float = 28.0) -> Array:
    """Crystal labels (int32) from class probabilities (3, Y, X): connected regions of interior
    probability above ``thresholds.seed`` of at least ``min_seed_fraction`` of a crystal of
    ``crystal_diameter_px`` are seeds, grown by watershed on (boundary - interior) over the
    foreground (interior + boundary above ``thresholds.foreground``); crystals scoring below
    ``thresholds.min_crystal_score`` (:func:`crystal_scores`) are dropped."""
    interior, boundary = probabilities[1], probabilities[2]
    seeds, n_seeds = ndi.label(interior > thresholds.seed)
    if n_seeds:
        min_seed_px = thresholds.min_seed_fraction * np.pi / 4 * crystal_diameter_px ** 2
        small = np.bincount(seeds.ravel()) < min_seed_px
        small[0] = False
        seeds = ndi.label(~small[seeds] & (seeds > 0))[0]  # numbered 1..N again
    foreground = (interior + boundary) > thresholds.foreground
    labels = watershed(boundary - interior, seeds, mask=foreground).astype(np.int32)
    if thresholds.min_crystal_score > 0:
        labels = confident_crystals(labels, crystal_scores(probabilities, labels), thresholds.min_crystal_score)
    return labels


def crystal_scores(probabilities: Array, labels: Array) -> Array:
    """Each crystal's score: the mean interior + boundary probability over its pixels, float
    (N + 1,) indexed by label (index 0, the background, is 0; so is a label with no pixels, which
    a seed outside the foreground leaves)."""
    count = int(labels.max())
    sums = np.bincount(labels.ravel(), weights=(probabilities[1] + probabilities[2]).ravel(), minlength=count + 1)
    pixels = np.bincount(labels.ravel(), minlength=count + 1)
    scores = sums / np.maximum(pixels, 1)
    scores[0] = 0.0
    return scores


def confident_crystals(labels: Array, scores: Array, min_score: float) -> Array:
    """``labels`` without the crystals whose score (:func:`crystal_scores`) is below ``min_score``,
    numbered 1..M again."""
    kept = scores >= min_score
    kept[0] = False
    numbers = np.zeros(len(scores), np.int32)
    numbers[kept] = np.arange(1, int(kept.sum()) + 1)
    return numbers[labels]


def working_scale_image(image: Array, model: SegmenterModel, *, crystal_diameter_px: float) -> Array:
    """A gray image (Y, X) whose typical crystal is ``crystal_diameter_px`` pixels across,
    normalised (:func:`normalized`) and rescaled to the model's working scale: float32 (Y', X'),
    Y' = Y * working diameter / ``crystal_diameter_px``, likewise X' (not rescaled within 2 %)."""
    if crystal_diameter_px <= 0:
        raise ValueError(f"crystal_diameter_px must be positive, got {crystal_diameter_px}")
    factor = model.working_diameter_px / crystal_diameter_px
    small = normalized(image)
    if abs(factor - 1) > 0.02:
        small = rescale(small, factor, order=1, anti_aliasing=factor < 1, preserve_range=True).astype(np.float32)
    return small


def working_scale_probabilities(image: Array, model: SegmenterModel, *, crystal_diameter_px: float,
                                warn_without_contrast: bool = True) -> Array:
    """Class probabilities (3, Y', X') float32 of a gray image (Y, X) whose typical crystal is
    ``crystal_diameter_px`` pixels across, at the model's working scale
    (:func:`working_scale_image`), averaged over two orientations; all background, with a warning
    unless ``warn_without_contrast`` is False, where there is no contrast at that scale."""
    small = working_scale_image(image, model, crystal_diameter_px=crystal_diameter_px)
    if float(small.std()) < MIN_WORKING_CONTRAST:  # all background
        if warn_without_contrast:
            log.warning("no clear contrast at the crystal scale (%.0f px; contrast %.3f < %.2f): no crystals",
                        crystal_diameter_px, float(small.std()), MIN_WORKING_CONTRAST)
        background = np.zeros((3, *small.shape), np.float32)
        background[0] = 1
        return background
    return rotation_averaged_probabilities(model, small)


def labels_at_shape(labels: Array, shape: tuple[int, int]) -> Array:
    """Labels (int32) resized to ``shape`` by nearest neighbour (from working scale back to the image's)."""
    if labels.shape == tuple(shape):
        return labels.astype(np.int32, copy=False)
    return resize(labels, shape, order=0, preserve_range=True, anti_aliasing=False).astype(np.int32)


def segment_with_model(image: Array, model: SegmenterModel, *, crystal_diameter_px: float) -> Array:
    """Crystal labels (int32, shape of ``image``) of a gray image (float (Y, X)) whose typical
    crystal is ``crystal_diameter_px`` pixels across."""
    probabilities = working_scale_probabilities(image, model, crystal_diameter_px=crystal_diameter_px)
    if probabilities[0].size >= MANY_TILES * TILE_PX ** 2 // 2:
        log.info("crystal network done; separating crystals on %d x %d px", *probabilities.shape[:0:-1])
    labels = crystal_instances(probabilities, thresholds=model.thresholds,
                               crystal_diameter_px=model.working_diameter_px)
    return labels_at_shape(labels, image.shape)


def median_diameter_px(labels: Array) -> float | None:
    """Median equivalent-circle diameter of the labelled regions, px (None without regions)."""
    return diameter_quantile_px(labels, 0.5)


def central_tile(image: Array, side_px: int) -> Array:
    """The central ``side_px`` x ``side_px`` part of ``image`` (all of it along a shorter side)."""
    top, left = max((image.shape[0] - side_px) // 2, 0), max((image.shape[1] - side_px) // 2, 0)
    return image[top:top + side_px, left:left + side_px]


#: the refinement re-segments at this quantile of the diameters it found, not their median: the
#: crystals missed at a guess are the small ones (powder's satellites, TiO2's smallest particles), so
#: the median of what was found was 1.2-1.5x the outlines' median on TiO2 and powder. No settings,
#: real images, median -> 0.4 (-> 0.3): TiO2 0.812 -> 0.815 (0.829), perovskite 0.734 -> 0.727
#: (0.676: 0.7x its grains), spheroidite 0.596 -> 0.595 (0.594), powder 0.738 -> 0.792 (0.798);
#: 96 held-out synthetic scenes 0.879 -> 0.885 and 0.874 -> 0.875 (BENCHMARKS.md, "Thirteenth round")
REFINEMENT_QUANTILE = 0.4


def diameter_quantile_px(labels: Array, quantile: float) -> float | None:
    """The ``quantile`` (0-1) of the labelled regions' equivalent-circle diameters, px (None
    without regions)."""
    areas = np.bincount(labels.ravel())[1:]
    areas = areas[areas > 0]
    return float(np.quantile(2 * np.sqrt(areas / np.pi), quantile)) if areas.size else None


def refined_crystal_diameter_px(image: Array, model: SegmenterModel, *, first_guess_px: float,
                                rounds: int = 2) -> float:
    """The typical crystal diameter of ``image``, px, by segmenting at a guess and re-segmenting at
    the :data:`REFINEMENT_QUANTILE` of the diameters of what was found (as Cellpose refines its size
    estimate from what it found), ``rounds`` times. Each round sees the central part of the image
    that fills one tile at working scale, so the cost does not grow with the image. Keeps the last
    guess when nothing is found."""
    diameter = first_guess_px
    if not np.isfinite(diameter):  # no scale to start from
        return diameter
    for _ in range(rounds):
        centre = central_tile(image, max(int(TILE_PX * diameter / model.working_diameter_px), 64))
        found = diameter_quantile_px(segment_with_model(centre, model, crystal_diameter_px=diameter),
                                     REFINEMENT_QUANTILE)
        if found is None:
            break
        diameter = found
    return diameter


#: where :func:`self_consistent_crystal_diameter_px` starts its searches, px
SEARCH_START_DIAMETERS_PX = (8.0, 16.0, 32.0, 64.0)
#: side of the central tile it segments, px at working scale (about 330 typical crystal areas)
SEARCH_TILE_PX = 512
#: smaller diameters end a search, px: at 3 px the network magnified 10 times finds the image's
#: texture, with a median of the same size (a tiny fixed point that means nothing)
SEARCH_MIN_DIAMETER_PX = 4.0
#: a search's end counts where its last segmentation changed the diameter by at most this factor
SEARCH_MAX_CHANGE = 1.25


def self_consistent_crystal_diameter_px(image: Array, model: SegmenterModel, *,
                                        start_diameters_px: tuple[float, ...] = SEARCH_START_DIAMETERS_PX,
                                        rounds: int = 3, tile_px: int = SEARCH_TILE_PX) -> float:
    """The typical crystal diameter of ``image`` (float (Y, X)), px, with no first guess: from each
    of ``start_diameters_px``, segment the central part of the image (``tile_px`` at working scale)
    at the diameter and again at the median diameter of what was found, up to ``rounds`` times
    (stopping once it changes by under 2 %); of the ends, the one whose last segmentation changed
    it least (the segmentation agrees with itself there). NaN where no search finds crystals and
    settles (nothing to measure: noise, a featureless image).
    For images whose texture gives no scale (crystals under about 10 px, fine mosaics; measured in
    BENCHMARKS.md, "Eleventh round")."""
    ends = [end for diameter in start_diameters_px
            if (end := _search_end(image, model, diameter, rounds, tile_px)) is not None]
    return min(ends)[1] if ends else float("nan")


def _search_end(image: Array, model: SegmenterModel, diameter: float, rounds: int, tile_px: int
                ) -> tuple[float, float] | None:
    """(the last round's change factor, the diameter) where one search from ``diameter`` ends;
    None where it finds nothing, falls under the smallest diameter or does not settle."""
    change = math.inf
    for _ in range(rounds):
        found = _found_median_diameter_px(image, model, diameter, tile_px)
        if found is None or found < SEARCH_MIN_DIAMETER_PX:
            return None
        change, diameter = max(found / diameter, diameter / found), found
        if change < 1.02:
            break
    return (change, diameter) if change <= SEARCH_MAX_CHANGE else None


def _found_median_diameter_px(image: Array, model: SegmenterModel, diameter: float, tile_px: int) -> float | None:
    """The median diameter (px of ``image``) of the crystals found in its central part segmented at
    ``diameter``; None without any (all background at that scale: no warning, it is a search)."""
    centre = central_tile(image, max(int(tile_px * diameter / model.working_diameter_px), 64))
    probabilities = working_scale_probabilities(centre, model, crystal_diameter_px=diameter,
                                                warn_without_contrast=False)
    found = median_diameter_px(crystal_instances(probabilities, thresholds=model.thresholds,
                                                 crystal_diameter_px=model.working_diameter_px))
    return None if found is None else found * centre.shape[0] / probabilities.shape[1]
