"""What defines a synthetic scene (:class:`SceneSpec`, :class:`SemEffects`) and what rendering gives
(:class:`SyntheticScene`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from ..classes import CLASS_CODES

Array = np.ndarray

#: The kinds of scene :func:`microcrystalnet.synth.render_scene` draws:
#: ``separate`` crystals over dark pores (the paper's micrite look, the default);
#: ``mosaic`` space-filling polygonal/rhombic crystals with thin dark boundaries (tight micrite);
#: ``clusters`` touching, partly hidden particles on a substrate;
#: ``matrix`` particles partly sunk in a textured matrix whose structure is not particles.
SceneKind = Literal["separate", "mosaic", "clusters", "matrix"]
SCENE_KINDS: tuple[str, ...] = ("separate", "mosaic", "clusters", "matrix")
#: The fine texture that dominates a ``matrix`` scene's matrix, see :mod:`microcrystalnet.synth.matrix`.
MatrixTexture = Literal["speckle", "lamellae", "flakes"]
MATRIX_TEXTURES: tuple[str, ...] = ("speckle", "lamellae", "flakes")


@dataclass(frozen=True)
class SemEffects:
    """How the microscope shows a scene, beyond the scene itself. The defaults leave the
    ``separate`` scene as it always was; :func:`random_training_scene` draws all of them.

    Intensities are in units of the clean image (0 = black, 1 = white); lengths in pixels, since
    these are properties of the scan, not of the sample.
    """

    #: brightness added at a crystal edge (secondary-electron edge effect), fading inwards over
    #: ``SceneSpec.rim_width_um``
    edge_brightness: float = 0.22
    #: detector direction, radians from the +column axis towards +row (image "down"); crystal sides
    #: facing it are brighter and a shadow falls on the far side
    detector_direction_rad: float = 0.0
    #: brightness difference between the lit and the shadowed side of a crystal; 0 = no shading
    shading_strength: float = 0.0
    #: how far the shadow reaches beyond a crystal's far side, pixels
    shadow_length_px: float = 4.0
    #: number of charging streaks: bright horizontal smears trailing to the right of a spot
    charging_streaks: int = 0
    #: peak brightness added by a charging streak
    charging_brightness: float = 0.25
    #: standard deviation of a per-row brightness offset (scan-line noise)
    row_offset_std: float = 0.0
    #: standard deviation of a per-row horizontal shift, pixels (scan jitter)
    row_jitter_px: float = 0.0
    #: beam blur (Gaussian PSF sigma), pixels, added to the scene's own blur
    blur_px: float = 0.0
    #: output = offset + contrast * clean ** gamma
    contrast: float = 1.0
    offset: float = 0.0
    gamma: float = 1.0

    def __post_init__(self) -> None:
        if self.shading_strength < 0 or self.shadow_length_px < 0 or self.charging_streaks < 0:
            raise ValueError("shading_strength, shadow_length_px and charging_streaks must not be negative")
        if self.row_offset_std < 0 or self.row_jitter_px < 0 or self.blur_px < 0:
            raise ValueError("row_offset_std, row_jitter_px and blur_px must not be negative")
        if self.contrast <= 0 or self.gamma <= 0:
            raise ValueError("contrast and gamma must be positive")


@dataclass(frozen=True)
class SceneSpec:
    """Everything that defines a synthetic scene; the same spec and seed give the same scene.

    Lengths are in micrometres so a scene keeps its physical content at any pixel size.
    """

    shape: tuple[int, int] = (2048, 2048)
    pixel_size_um: float = 0.01
    #: what the scene shows, see :data:`SCENE_KINDS`
    kind: SceneKind = "separate"
    #: crystal diameters, micrometres; micrite is 1-4 um. ``separate``: largest extents drawn
    #: uniformly from this range. Other kinds: equivalent diameters, log-normal with the range's
    #: geometric mean as median and the range as +-2 standard deviations
    crystal_size_um: tuple[float, float] = (1.0, 4.0)
    #: fraction of the image covered by crystals at which placement stops (not for ``mosaic``)
    coverage: float = 0.62
    #: relative frequency of RES, PES, AA, RA/SA (not for ``mosaic``)
    class_weights: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)
    #: a crystal keeps at least this fraction of its area visible when others cover it
    min_visible_fraction: float = 0.6
    #: a new crystal may cover others with at most this fraction of its own area
    max_overlap_fraction: float = 0.15
    #: a crystal cut by the image border keeps at least this fraction of its area
    min_inside_fraction: float = 0.35
    #: mean detected electrons per pixel at intensity 1 (shot noise); lower is noisier
    electrons_at_white: float = 40.0
    #: standard deviation of the read-out noise, in intensity units (0-1)
    read_noise: float = 0.02
    #: width of the bright edge rim, micrometres
    rim_width_um: float = 0.03
    #: width of the dark crevice where a crystal passes under a neighbour, micrometres
    crevice_width_um: float = 0.02
    #: ``mosaic``: width of the dark intercrystalline boundary, micrometres
    boundary_width_um: float = 0.05
    #: ``mosaic``: how much darker a boundary's middle is than the crystals, 0 (invisible) to 1 (black)
    boundary_darkness: float = 0.5
    #: ``mosaic``: fraction of triple junctions with a micropore
    micropore_fraction: float = 0.2
    #: ``mosaic``: bias to rhombic crystals, 0 (equant polygons) to 1 (strongly rhombic)
    rhombic_bias: float = 0.5
    #: ``matrix``: the matrix's dominant fine texture (:data:`MATRIX_TEXTURES`); every matrix also
    #: has relief at several scales, pits, grooves, ridges and dim sunken particles
    matrix_texture: MatrixTexture = "speckle"
    #: ``matrix``: how much brighter crystals are than the matrix, intensity units
    matrix_contrast: float = 0.15
    #: ``matrix``: how deep crystals sit in the matrix: along its edge, the matrix covers each
    #: crystal unevenly up to this fraction of its radius (0 = crystals lie on top)
    burial_fraction: float = 0.25
    #: ``clusters``: brightness of the rims of a thin film on the substrate (islands and holes with
    #: bright step edges, as dried residues and coatings show under a particle sample), intensity
    #: units at the brightest rims; 0 = a smooth substrate
    substrate_film: float = 0.0
    #: ``clusters``, ``matrix``: largest length-to-width stretch of a crystal; each one is stretched
    #: along a random direction by a factor drawn log-uniformly from 1 to this, keeping its area
    max_elongation: float = 1.0
    #: the microscope's rendering
    sem: SemEffects = field(default_factory=SemEffects)
    seed: int = 0

    def __post_init__(self) -> None:
        if len(self.shape) != 2 or min(self.shape) < 32:
            raise ValueError(f"shape must be (height, width) of at least 32 px, got {self.shape}")
        if self.pixel_size_um <= 0:
            raise ValueError("pixel_size_um must be positive")
        if self.kind not in SCENE_KINDS:
            raise ValueError(f"kind must be one of {', '.join(SCENE_KINDS)}, got {self.kind!r}")
        low, high = self.crystal_size_um
        if not 0 < low <= high:
            raise ValueError(f"crystal_size_um must be (low, high) with 0 < low <= high, got {self.crystal_size_um}")
        if not 0 < self.coverage < 1:
            raise ValueError("coverage must be between 0 and 1")
        if len(self.class_weights) != len(CLASS_CODES) or min(self.class_weights) < 0 or sum(self.class_weights) <= 0:
            raise ValueError("class_weights needs 4 non-negative weights, not all zero")
        for name in ("boundary_darkness", "micropore_fraction", "rhombic_bias"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.boundary_width_um <= 0:
            raise ValueError("boundary_width_um must be positive")
        if self.matrix_texture not in MATRIX_TEXTURES:
            raise ValueError(f"matrix_texture must be one of {', '.join(MATRIX_TEXTURES)}, got {self.matrix_texture!r}")
        if not 0 <= self.burial_fraction < 1:
            raise ValueError(f"burial_fraction must be at least 0 and below 1, got {self.burial_fraction}")
        if self.substrate_film < 0:
            raise ValueError(f"substrate_film must not be negative, got {self.substrate_film}")
        if self.max_elongation < 1:
            raise ValueError(f"max_elongation must be at least 1, got {self.max_elongation}")

    @property
    def median_diameter_px(self) -> float:
        """Median crystal diameter in pixels (geometric mean of ``crystal_size_um``)."""
        return float(np.sqrt(np.prod(self.crystal_size_um))) / self.pixel_size_um

    def draw_diameters_px(self, rng: np.random.Generator, n: int) -> Array:
        """``n`` log-normal equivalent diameters, pixels, inside ``crystal_size_um``."""
        low, high = np.asarray(self.crystal_size_um) / self.pixel_size_um
        sigma = np.log(high / low) / 4
        return np.clip(self.median_diameter_px * np.exp(sigma * rng.standard_normal(n)), low, high)


@dataclass
class SyntheticScene:
    """A rendered scene and its ground truth.

    ``image``: uint8 (Y, X), the noisy SEM-like image. ``clean``: float32 (Y, X) in [0, 1], the
    same without noise. ``labels``: int32 (Y, X), 0 for pore space, substrate, matrix or crystal
    boundary and 1..N for the visible part of each crystal, one connected region each.
    ``crystal_classes[i]`` is the class code of crystal ``i + 1``; ``"unclear"`` for mosaic
    crystals, whose tessellated outlines are not drawn from a class.
    """

    image: Array
    clean: Array
    labels: Array
    crystal_classes: tuple[str, ...]
    pixel_size_um: float
    spec: SceneSpec = field(repr=False)

    @property
    def n_crystals(self) -> int:
        return len(self.crystal_classes)
