"""Synthetic SEM scenes of crystals with exact ground truth.

The paper's data set (lmcDB) is not public, so tests, the demo, the benchmarks and training data
use scenes rendered here. A scene is a secondary-electron-like image together with the exact
instance label image of what is visible and the class of every crystal. Nothing measured on these
scenes is a result on real rocks.

Scene kinds (``SceneSpec.kind``), one module each:

* ``separate`` (:mod:`.separate`, the default): crystals over dark pore space;
* ``mosaic`` (:mod:`.mosaic`): dense, space-filling micrite mosaic with thin dark boundaries;
* ``clusters`` (:mod:`.clusters`): touching, partly hidden particles on a substrate;
* ``matrix`` (:mod:`.matrix`): bright, smooth particles of many sizes, partly sunk in a matrix
  rough at several scales (flakes, lamellae, ridges, grooves, pits), whose structure is background.

Crystal outlines and shading per class are in :mod:`.crystals`; the microscope's effects (edge
rims, detector shading, charging, scan lines, blur, contrast, noise) in :mod:`.sem`; randomised
training scenes in :mod:`.training`.
"""

from __future__ import annotations

from .render import render_scene
from .spec import SCENE_KINDS, SceneSpec, SemEffects, SyntheticScene
from .training import random_training_scene

__all__ = ["SCENE_KINDS", "SceneSpec", "SemEffects", "SyntheticScene", "random_training_scene", "render_scene"]
