"""Whether the crystals of an image are brighter or darker than what surrounds them.

Every segmenter and the classifier expect bright crystals, as secondary-electron images of micrite
and of most particles show them. ``segment.crystal_contrast`` says which the image has: ``dark``
inverts its gray levels for segmentation and classification; ``auto`` lets the learned segmenter
judge (:mod:`.learned.contrast`: it segments the central part of the image as given and inverted
and keeps the one it is clearly surer of). Segmenters that cannot judge take ``bright``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

Array = np.ndarray

#: ``auto`` takes the crystals to be dark only where the segmenter is surer of the inverted image
#: than of the image as given by more than these margins, both: (mean crystal score, mean pixel
#: certainty) of :func:`.learned.contrast.certainty`. Each alone misjudged some held-out images
#: with bright crystals (the crystal score by up to 0.019 on synthetic clusters, the pixels by up
#: to 0.18 on synthetic mosaics, whose thin boundaries inverted are confidently "not crystal");
#: both together none of 222 (18 real images, 60 synthetic, the real ones with gamma 0.5 and 2,
#: noise, blur, at the size given and at the texture-scale first guess), while judging all 18
#: real images dark once inverted, at either size (BENCHMARKS.md, "Dark crystals")
DARK_MARGINS = (0.005, 0.015)

#: (image float (Y, X) in [0, 1], typical crystal diameter px) -> the segmenter's certainty
#: (mean crystal score, mean pixel certainty) about the image as given and with inverted gray levels
ContrastJudge = Callable[[Array, float], tuple[tuple[float, float], tuple[float, float]]]


@dataclass(frozen=True)
class CrystalContrast:
    """Whether an analysis took the crystals to be bright or dark, and why."""

    crystals: str  # "bright" or "dark"
    source: str  # "crystal_contrast" (set), "judged from the image" or "the segmenter cannot judge"
    #: judged only: (mean crystal score, mean pixel certainty) as given and inverted
    certainty: tuple[tuple[float, float], tuple[float, float]] | None = None

    @property
    def dark(self) -> bool:
        return self.crystals == "dark"

    def as_dict(self) -> dict[str, Any]:
        judged = {}
        if self.certainty is not None:
            (crystals_given, pixels_given), (crystals_inverted, pixels_inverted) = self.certainty
            judged = {"crystal_score_as_given": round(crystals_given, 3),
                      "crystal_score_inverted": round(crystals_inverted, 3),
                      "pixel_certainty_as_given": round(pixels_given, 3),
                      "pixel_certainty_inverted": round(pixels_inverted, 3)}
        return {"crystals": self.crystals, "source": self.source, **judged}


def crystal_contrast(image: Array, setting: str, *, crystal_diameter_px: float,
                     judge: ContrastJudge | None = None) -> CrystalContrast:
    """Whether the crystals of ``image`` (float (Y, X) in [0, 1], typical crystal
    ``crystal_diameter_px`` across) are bright or dark: as ``setting`` (``segment.crystal_contrast``)
    says, or, for ``auto``, as ``judge`` finds (dark only by more than :data:`DARK_MARGINS`;
    bright without a judge)."""
    if setting != "auto":
        return CrystalContrast(setting, "crystal_contrast")
    if judge is None:
        return CrystalContrast("bright", "the segmenter cannot judge")
    as_given, inverted = judge(image, crystal_diameter_px)
    dark = all(surer - certain > margin for certain, surer, margin in zip(as_given, inverted, DARK_MARGINS))
    return CrystalContrast("dark" if dark else "bright", "judged from the image", (as_given, inverted))


def with_bright_crystals(image: Array, contrast: CrystalContrast) -> Array:
    """``image`` (float in [0, 1]) with its gray levels inverted where its crystals are dark (a new
    array), else itself."""
    return np.subtract(np.float32(1), image, dtype=np.float32) if contrast.dark else image
