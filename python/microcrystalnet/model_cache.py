"""Loaded models kept for reuse across analyses, keyed by the settings that define each model.

A long-lived process (the Fiji command's resident worker, :mod:`microcrystalnet.fiji_worker`, or
the Python session that started ImageJ, :class:`microcrystalnet.imagej.InProcessAnalysis`) asks
:class:`ModelCache` for the models of each analysis; a second image with the same model settings
loads nothing. Loading the classifier, the learned segmenter or SAM (PyTorch; Keras for a classifier
file torch cannot run) takes seconds; the analysis of one image often takes less.

A setting that names a file (a Keras classifier, a segmenter model, a SAM checkpoint, a Noise2Void
model) identifies it by its resolved path and modification time, so a model file retrained in
place is loaded again, not served stale.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any, TypeVar

from .config import AnalysisConfig, SegmentConfig

T = TypeVar("T")
log = logging.getLogger(__name__)


def model_key(kind: str, settings: tuple[Any, ...]) -> tuple[Hashable, ...]:
    """The cache key of a model of ``kind`` loaded with ``settings``: a setting naming an existing
    file stands as (resolved path, modification time in ns)."""
    parts: list[Hashable] = [kind]
    for setting in settings:
        path = Path(setting) if isinstance(setting, (str, Path)) else None
        if path is not None and path.is_file():
            resolved = path.resolve()
            parts.append((str(resolved), resolved.stat().st_mtime_ns))
        else:
            parts.append(setting)
    return tuple(parts)


class ModelCache:
    """Models loaded once and handed out again for the same settings.

    ``load_n2v``: how to load a Noise2Void model from its path (default
    :meth:`microcrystalnet.preprocess.Noise2VoidModel.load`; the in-process Fiji backend passes
    :class:`microcrystalnet.preprocess.Noise2VoidProcess`). ``on_load``: told what is about to be
    loaded (e.g. "classifier reference-2023-11-19"), before every load; by default it is logged.
    ``loads``: how many models were loaded so far.
    """

    def __init__(self, load_n2v: Callable[[str], Any] | None = None,
                 on_load: Callable[[str], None] | None = None) -> None:
        self._models: dict[tuple[Hashable, ...], Any] = {}
        self._load_n2v = load_n2v
        self._on_load = on_load or (lambda what: log.info("loading the %s", what))
        self.loads = 0

    def reuse(self, kind: str, settings: tuple[Any, ...], load: Callable[[], T]) -> T:
        """The model of ``kind`` loaded before with ``settings``, else ``load()``'s, kept."""
        key = model_key(kind, settings)
        if key not in self._models:
            self._on_load(" ".join([kind, *(str(setting) for setting in settings if setting is not None)]))
            self._models[key] = load()
            self.loads += 1
        return self._models[key]

    def close(self) -> None:
        """Close every model that holds something outside this process's memory (a Noise2Void
        model's temporary folder, a Noise2Void worker process) and forget all models."""
        for model in self._models.values():
            close = getattr(model, "close", None)
            if callable(close):
                close()
        self._models.clear()

    def classifier(self, model: str, download: bool = True) -> Any:
        """The crystal classifier ``model`` (a registered name or a Keras file)."""
        from .classify import CrystalClassifier

        return self.reuse("classifier", (model,), lambda: CrystalClassifier.load(model, download=download))

    def segmenter(self, config: SegmentConfig, download: bool = True) -> Any:
        """The segmenter ``config`` names; its model (learned, SAM) comes from this cache."""
        from .segment import make_segmenter

        return make_segmenter(config, download=download, reuse=self.reuse)

    def n2v(self, path: str) -> Any:
        """The Noise2Void model at ``path``."""
        if self._load_n2v is None:
            from .preprocess import Noise2VoidModel

            self._load_n2v = Noise2VoidModel.load
        load = self._load_n2v
        return self.reuse("Noise2Void model", (path,), lambda: load(path))

    def models(self, config: AnalysisConfig, download: bool = True) -> Any:
        """The classifier, segmenter and Noise2Void model (if the settings run one) of ``config``,
        as :class:`microcrystalnet.pipeline.AnalysisModels`."""
        from .classify import CrystalClassifier
        from .pipeline import AnalysisModels

        if model_key("classifier", (config.classify.model,)) not in self._models:
            CrystalClassifier.locate(config.classify.model, download)  # a wrong one fails before any model loads
        n2v = self.n2v(config.preprocess.n2v_model) if config.preprocess.runs_n2v_model else None
        segmenter = self.segmenter(config.segment, download)  # before any Keras classifier: see frameworks
        return AnalysisModels(self.classifier(config.classify.model, download), segmenter, n2v)
