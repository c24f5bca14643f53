"""One entry for every scene kind."""

from __future__ import annotations

from .clusters import render_clusters
from .matrix import render_matrix
from .mosaic import render_mosaic
from .separate import render_separate
from .spec import SceneSpec, SyntheticScene

_RENDERERS = {"separate": render_separate, "mosaic": render_mosaic, "clusters": render_clusters,
              "matrix": render_matrix}


def render_scene(spec: SceneSpec = SceneSpec()) -> SyntheticScene:
    """Render a synthetic SEM scene of ``spec.kind`` with its exact instance labels and classes.

    Same spec (seed included), same scene. See :class:`SceneSpec` for every parameter.
    """
    return _RENDERERS[spec.kind](spec)
