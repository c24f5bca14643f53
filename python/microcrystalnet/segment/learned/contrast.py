"""Whether a trained segmenter is surer of what it sees in an image as it is or with its gray
levels inverted: the judge of :mod:`microcrystalnet.segment.contrast` for images whose crystals
may be darker than what surrounds them.

The shipped network learned bright crystals (secondary-electron images of micrite and of most
particles); on an image with its gray levels inverted it still finds crystals, but less surely
(held-out real images: F1 0.38-0.56 on TiO2, 0.01-0.04 on spheroidite, BENCHMARKS.md). Its
certainty (:func:`certainty`) tells the two apart.

The judge is always that network (:func:`load_contrast_judge`), whichever model segments: the
margins of :data:`..contrast.DARK_MARGINS` were chosen on its certainties, and other networks'
certainties do not keep to them. A model fine-tuned for five minutes on one spheroidite image,
judging for itself, took 8 of 222 images with bright crystals for dark ones (six TiO2 images at
gamma 2), three further-trained defaults 1-2 each; the shipped network none
(``bench/bench_crystal_contrast.py``, BENCHMARKS.md "Dark crystals").
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..contrast import Certainty, ShippedNetworkJudge
from .inference import (MIN_WORKING_CONTRAST, central_tile, class_probabilities, crystal_instances, crystal_scores,
                        working_scale_image)
from .model_file import DEFAULT_MODEL_NAME, SegmenterModel, SegmenterModelError, load_segmenter_model

Array = np.ndarray

#: side of the central tile judged, px at working scale (about 300 crystal areas: the judgement
#: costs two network passes of this tile whatever the image's size)
JUDGED_TILE_PX = 512

#: sha256 of the network whose certainties :data:`..contrast.DARK_MARGINS` were chosen on: the
#: shipped default segmenter. A new default segmenter leaves the judge as it is (keep this network's
#: file for it) or comes with margins chosen anew on its certainties (``bench_crystal_contrast.py
#: --judge-model``)
JUDGE_MODEL_SHA256 = "950fc9dd6e3a2bea134f17cb0e40eb372e894e9be6f292f3dd038894ecbbe0b4"


def load_contrast_judge(*, device: str = "cpu") -> SegmenterModel:
    """The network that judges whether an image's crystals are dark, for every segmenter and model:
    the shipped default, with its own thresholds, on ``device``. Raises
    :class:`.model_file.SegmenterModelError` where the installation lacks it or it is damaged,
    saying how to analyse without it."""
    try:
        return load_segmenter_model(DEFAULT_MODEL_NAME, device=device)
    except SegmenterModelError as error:
        raise SegmenterModelError(f"{error}. It judges whether the crystals are bright or dark (crystal contrast "
                                  "auto), whichever segmenter runs; to do without it, set the crystal contrast "
                                  "(--crystal-contrast bright or dark)") from None


def is_contrast_judge(model: SegmenterModel) -> bool:
    """Whether ``model`` is the judge's network (:data:`JUDGE_MODEL_SHA256`)."""
    return model.sha256 == JUDGE_MODEL_SHA256


def shipped_judge_reusing(model: SegmenterModel | None, *, device: str) -> ShippedNetworkJudge:
    """The shipped network's judge (:class:`..contrast.ShippedNetworkJudge`): ``model`` itself
    where it is that network (with its own thresholds), else the shipped one, loaded on ``device``
    when the first image is judged."""
    if model is not None and is_contrast_judge(model):
        return ShippedNetworkJudge(lambda: model)
    return ShippedNetworkJudge(lambda: load_contrast_judge(device=device))


def certainty(probabilities: Array, model: SegmenterModel) -> Certainty:
    """How sure the model is of what it sees in ``probabilities`` (3, Y, X): the mean score of the
    crystals its thresholds find (:func:`.inference.crystal_scores`, counting those its
    crystal-score limit would drop; 0 without crystals), and the mean probability of every
    pixel's most probable class (both 0-1)."""
    labels = crystal_instances(probabilities, thresholds=replace(model.thresholds, min_crystal_score=0.0),
                               crystal_diameter_px=model.working_diameter_px)
    scores = crystal_scores(probabilities, labels)[1:]
    scores = scores[scores > 0]
    return Certainty(float(scores.mean()) if scores.size else 0.0, float(probabilities.max(0).mean()))


def certainty_as_given_and_inverted(image: Array, model: SegmenterModel, *, crystal_diameter_px: float,
                                    tile_px: int = JUDGED_TILE_PX) -> tuple[Certainty, Certainty]:
    """The model's :func:`certainty` on the central part of ``image`` (float (Y, X) in [0, 1],
    typical crystal ``crystal_diameter_px`` across) that fills ``tile_px`` at working scale, as
    given and with its gray levels inverted. A tile without structure at the crystal scale (as
    :func:`.inference.working_scale_probabilities` finds it: only background) gives the same
    certainty both ways, so it is never judged dark (on pure noise the network is surer of the
    inverted noise, and a "dark crystals" notice would be wrong)."""
    side = max(int(tile_px * crystal_diameter_px / model.working_diameter_px), 64)
    centre = central_tile(image, side)
    as_given = working_scale_image(centre, model, crystal_diameter_px=crystal_diameter_px)
    if float(as_given.std()) < MIN_WORKING_CONTRAST:
        only_background = Certainty(crystal_score=0.0, pixel_certainty=1.0)
        return only_background, only_background
    inverted = working_scale_image(1 - centre, model, crystal_diameter_px=crystal_diameter_px)
    return certainty(class_probabilities(model, as_given), model), certainty(class_probabilities(model, inverted), model)
