"""Whether the crystals of an image are brighter or darker than what surrounds them.

Every segmenter and the classifier expect bright crystals, as secondary-electron images of micrite
and of most particles show them. ``segment.crystal_contrast`` says which the image has: ``dark``
inverts its gray levels for segmentation and classification; ``auto`` lets the shipped learned
network judge, whichever segmenter and model segment (:mod:`.learned.contrast`: it segments the
central part of the image as given and inverted and takes the inverted one only where it is
clearly surer of it; :class:`microcrystalnet.segment.ShippedNetworkJudge`). A segmenter object
without a judge takes ``bright``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import numpy as np

from ..config import SegmentConfig
from .scale import estimate_crystal_diameter_px, first_guess_diameter_px, size_is_set

Array = np.ndarray

JUDGED = "judged from the image"
SET = "crystal_contrast"
NO_JUDGE = "the segmenter cannot judge"


class Certainty(NamedTuple):
    """How sure a segmenter is of what it sees in an image (:func:`.learned.contrast.certainty`)."""

    crystal_score: float  # mean score of the crystals it finds, 0-1
    pixel_certainty: float  # mean probability of every pixel's most probable class, 0-1


#: ``auto`` takes the crystals to be dark only where the judge (the shipped network,
#: :func:`.learned.contrast.load_contrast_judge`) is surer of the inverted image than of the image
#: as given by more than these margins, both. Each alone misjudged some held-out
#: images with bright crystals (the crystal score by up to 0.019 on synthetic clusters, the pixels
#: by up to 0.18 on synthetic mosaics, whose thin boundaries inverted are confidently "not
#: crystal"); both together none of 222 judgements (18 real images as they are and with gamma 0.5
#: and 2, noise and blur, 60 synthetic scenes; at the size given and at the texture-scale first
#: guess), while judging all 18 real images dark once inverted, at either size
#: (``bench/bench_crystal_contrast.py``, BENCHMARKS.md "Dark crystals")
DARK_MARGINS = Certainty(crystal_score=0.005, pixel_certainty=0.015)

#: (image float (Y, X) in [0, 1], typical crystal diameter px) -> a network's certainty about the
#: image as given and with inverted gray levels
ContrastJudge = Callable[[Array, float], tuple[Certainty, Certainty]]


@dataclass(frozen=True)
class CrystalContrast:
    """Whether an analysis took the crystals to be bright or dark, and why."""

    crystals: Literal["bright", "dark"]
    source: str  # SET (the setting), JUDGED or NO_JUDGE
    #: judged only: the judge's certainty about the image as given and inverted
    certainty: tuple[Certainty, Certainty] | None = None
    #: judged only: the sha256 of the network that judged, where the judge names one
    judge_sha256: str | None = None

    @property
    def dark(self) -> bool:
        return self.crystals == "dark"

    @property
    def judged_dark(self) -> bool:
        return self.dark and self.source == JUDGED

    def as_dict(self) -> dict[str, Any]:
        judged = {}
        if self.certainty is not None:
            as_given, inverted = self.certainty
            judged = {"crystal_score_as_given": round(as_given.crystal_score, 3),
                      "crystal_score_inverted": round(inverted.crystal_score, 3),
                      "pixel_certainty_as_given": round(as_given.pixel_certainty, 3),
                      "pixel_certainty_inverted": round(inverted.pixel_certainty, 3)}
        if self.judge_sha256 is not None:
            judged["judge_sha256"] = self.judge_sha256
        return {"crystals": self.crystals, "source": self.source, **judged}


def crystal_contrast(image: Array, setting: str, *, crystal_diameter_px: float,
                     judge: ContrastJudge | None = None) -> CrystalContrast:
    """Whether the crystals of ``image`` (float (Y, X) in [0, 1], typical crystal
    ``crystal_diameter_px`` across) are bright or dark: as ``setting`` (``segment.crystal_contrast``)
    says, or, for ``auto``, as ``judge`` finds (dark only by more than :data:`DARK_MARGINS`;
    bright without a judge). A judge with a ``network_sha256`` (:class:`ShippedNetworkJudge`) is
    named by it in the result."""
    if setting != "auto":
        return CrystalContrast(setting, SET)
    if judge is None:
        return CrystalContrast("bright", NO_JUDGE)
    as_given, inverted = judge(image, crystal_diameter_px)
    dark = all(surer - certain > margin for certain, surer, margin in zip(as_given, inverted, DARK_MARGINS))
    return CrystalContrast("dark" if dark else "bright", JUDGED, (Certainty(*as_given), Certainty(*inverted)),
                           getattr(judge, "network_sha256", None))


def judged_crystal_contrast(image: Array, pixel_size_um: float | None, segment: SegmentConfig, *,
                            assumed_pixel_size_um: float, judge: ContrastJudge | None
                            ) -> tuple[CrystalContrast, float | None]:
    """Whether the crystals of ``image`` (float (Y, X) in [0, 1]) are bright or dark
    (``segment.crystal_contrast``; ``auto``: as ``judge`` finds, bright without one), and the
    image's texture-scale diameter estimate (None where the size is set). Judged at the diameter
    set, else at that estimate (which an image and its inverse share), never at a diameter refined
    by segmenting: that needs the crystals bright (refined on an image of dark crystals, it ran off
    to 10-40 times the true one and the judgement with it: BENCHMARKS.md, "Dark crystals").
    ``assumed_pixel_size_um``: for a size set in um on an uncalibrated image."""
    texture_px = None if size_is_set(segment) else estimate_crystal_diameter_px(image)
    diameter_px = first_guess_diameter_px(segment, pixel_size_um, assumed_pixel_size_um, texture_px)
    return crystal_contrast(image, segment.crystal_contrast, judge=judge, crystal_diameter_px=diameter_px), texture_px


class ShippedNetworkJudge:
    """The judge of ``auto`` for every segmenter: how sure the shipped learned network is of what
    it sees in an image (float (Y, X) in [0, 1], typical crystal ``crystal_diameter_px`` across)
    as given and with inverted gray levels (:func:`.learned.contrast.certainty_as_given_and_inverted`;
    :data:`DARK_MARGINS` were chosen on its certainties). ``load`` gives the network (default
    :func:`.learned.contrast.load_contrast_judge`, on the CPU) when the first image is judged: an
    analysis whose contrast is set loads nothing."""

    def __init__(self, load: Callable[[], Any] | None = None) -> None:
        self._load = load
        self._network: Any = None

    @property
    def network_sha256(self) -> str | None:
        """The judging network's sha256, once it is loaded (None before the first judgement)."""
        return None if self._network is None else self._network.sha256

    def __call__(self, image: Array, crystal_diameter_px: float) -> tuple[Certainty, Certainty]:
        from .learned.contrast import certainty_as_given_and_inverted, load_contrast_judge

        if self._network is None:
            self._network = self._load() if self._load is not None else load_contrast_judge()
        return certainty_as_given_and_inverted(image, self._network, crystal_diameter_px=crystal_diameter_px)


def with_bright_crystals(image: Array, contrast: CrystalContrast) -> Array:
    """``image`` (float in [0, 1]) with its gray levels inverted where its crystals are dark (a new
    array), else itself."""
    return np.subtract(np.float32(1), image, dtype=np.float32) if contrast.dark else image
