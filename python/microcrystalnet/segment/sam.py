"""Crystal segmentation with the Segment Anything Model (SAM), as the paper does.

Two modes (see :class:`microcrystalnet.config.SamConfig`): "prompt" asks SAM once per crystal
candidate of another segmenter (the learned one by default; point + box, decoded in batches
against one image embedding) and once per uncovered crystal area; "automatic" runs SAM's automatic mask
generator. Both end in the same geometry (:mod:`.masks`) and the shared label contract.

Checkpoints: the official ones (URL + sha256, per-user cache, ``MICROCRYSTALNET_MODEL_DIR``),
or a SAM-format checkpoint fine-tuned elsewhere (e.g. micro-sam's) given by path.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import pickle
import re
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage as ndi
from skimage.transform import resize

from ..allocator import freed_memory_kept
from ..config import SamConfig, SegmentConfig
from ..frameworks import import_segment_anything, import_torch, import_torchvision, torch_device
from ..weights import ModelUnavailableError, file_sha256, locate_weights
from .contrast import ContrastJudge, ShippedNetworkJudge
from .masks import CandidateMask, drop_container_masks, drop_pore_masks, inside_tile_interior, masks_to_labels, \
    tile_windows
from .scale import configured_diameter_px
from .watershed import crystal_foreground, segment_watershed

Array = np.ndarray

_BASE = "https://dl.fbaipublicfiles.com/segment_anything/"


@dataclass(frozen=True)
class SamCheckpoint:
    """An official SAM checkpoint (Kirillov et al. 2023, Apache 2.0)."""

    model_type: str
    filename: str
    sha256: str
    size_bytes: int
    other_filenames: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return f"sam-{self.model_type}"

    @property
    def path_option(self) -> str:
        return "--sam-checkpoint"

    @property
    def url(self) -> str:
        return _BASE + self.filename


SAM_CHECKPOINTS: dict[str, SamCheckpoint] = {c.model_type: c for c in (
    SamCheckpoint("vit_b", "sam_vit_b_01ec64.pth", "ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912",
                  375_042_383),
    SamCheckpoint("vit_l", "sam_vit_l_0b3195.pth", "3adcc4315b642a4d2101128f611684e8734c41232a17c648ed1693702a49a622",
                  1_249_524_607),
    SamCheckpoint("vit_h", "sam_vit_h_4b8939.pth", "a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e",
                  2_564_550_879),
)}


class SamCheckpointError(ModelUnavailableError):
    """A file given as SAM checkpoint is not one (empty, damaged, another format, or holding code)."""


def _load_checkpoint(path: Path, model_type: str) -> Any:
    """The unpickled content of a SAM checkpoint, tensors and plain containers only.

    ``weights_only=True`` refuses anything whose unpickling could run code; the message says so
    without repeating torch's advice to turn that protection off.
    """
    torch = import_torch()
    official = SAM_CHECKPOINTS[model_type]
    get_one = (f"Use the .pth file of a SAM {model_type} model: the official one ({official.url}, "
               f"sha256 {official.sha256}), or a SAM-format checkpoint of the same type fine-tuned elsewhere "
               "(e.g. micro-sam) that holds only its weights.")
    if path.stat().st_size == 0:
        raise SamCheckpointError(f"{path} is not a SAM {model_type} checkpoint: the file is empty (0 bytes; "
                                 f"an interrupted download or copy?). {get_one}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        code = re.search(r"GLOBAL (\S+)", str(error))
        reason = (f"it holds Python objects other than weights (first: {code.group(1)}), which are not loaded "
                  "because loading them could run code" if code else
                  "it is not a PyTorch checkpoint (unreadable pickle data)")
        raise SamCheckpointError(f"{path} is not a SAM {model_type} checkpoint: {reason}. {get_one}") from None
    except Exception as error:  # unpickling arbitrary bytes fails in arbitrary ways (IndexError, KeyError, ...)
        raise SamCheckpointError(f"{path} is not a SAM {model_type} checkpoint: it is damaged or not a PyTorch "
                                 f"file ({type(error).__name__}: {str(error)[:200]}). {get_one}") from None


def _state_dict_of(checkpoint: Any) -> dict:
    """SAM's weights from a checkpoint: a plain state dict, or one nested under a common key
    (fine-tuning tools save ``{"model_state": ...}`` or ``{"state_dict": ...}``)."""
    for key in ("model_state", "state_dict", "model"):
        if isinstance(checkpoint, dict) and isinstance(checkpoint.get(key), dict):
            checkpoint = checkpoint[key]
            break
    if not isinstance(checkpoint, dict):
        raise ValueError("the file holds no state dict")
    for prefix in ("module.", "sam."):
        if checkpoint and all(str(k).startswith(prefix) for k in checkpoint):
            checkpoint = {str(k)[len(prefix):]: v for k, v in checkpoint.items()}
    return checkpoint


@dataclass
class LoadedSam:
    """A SAM model ready to run, and where its weights came from."""

    model: Any
    model_type: str
    device: str
    checkpoint: Path
    sha256: str
    official: bool

    def describe(self) -> dict[str, Any]:
        return {"model_type": self.model_type, "checkpoint": str(self.checkpoint), "sha256": self.sha256,
                "official_checkpoint": self.official, "device": self.device}


def load_sam(model_type: str = "vit_b", checkpoint: str | Path | None = None, device: str | None = None,
             download: bool = True) -> LoadedSam:
    """Build SAM ``model_type`` and load its weights (official checkpoint, or ``checkpoint``)."""
    torch = import_torch()
    segment_anything = import_segment_anything()
    if model_type not in SAM_CHECKPOINTS:
        raise ValueError(f"unknown SAM model type {model_type!r}; known: {', '.join(SAM_CHECKPOINTS)}")
    if checkpoint is None:
        path = locate_weights(SAM_CHECKPOINTS[model_type], download=download)
        sha256, official = SAM_CHECKPOINTS[model_type].sha256, True
    else:
        path = Path(checkpoint)
        if path.is_dir():
            raise ModelUnavailableError(f"SAM checkpoint {path} is a folder; give the checkpoint file (.pth) in it")
        if not path.is_file():
            raise ModelUnavailableError(f"SAM checkpoint {path} does not exist")
        sha256, official = file_sha256(path), False
    checkpoint_content = _load_checkpoint(path, model_type)
    model = segment_anything.sam_model_registry[model_type](checkpoint=None)
    try:
        model.load_state_dict(_state_dict_of(checkpoint_content))
    except (RuntimeError, ValueError) as error:
        raise SamCheckpointError(f"{path} is not a SAM {model_type} checkpoint ({str(error)[:300]})") from error
    chosen = torch_device(device, user="SAM")
    if chosen == "cpu":
        torch.set_num_threads(os.cpu_count() or 1)
    model.to(chosen).eval()
    return LoadedSam(model, model_type, chosen, path, sha256, official)


def working_pixel_size(shape: tuple[int, int], pixel_size_um: float, min_crystal_area_um2: float,
                       config: SamConfig) -> float:
    """Pixel size (um) at which SAM sees the image: fit one tile if the smallest crystal stays
    at least ``min_crystal_px`` across, never finer than the image itself."""
    fit_one_tile = max(shape) * pixel_size_um / config.tile_px
    smallest_diameter = 2 * math.sqrt(min_crystal_area_um2 / math.pi)
    keep_small_crystals = smallest_diameter / config.min_crystal_px
    return max(pixel_size_um, min(fit_one_tile, keep_small_crystals))


#: freed blocks the process keeps while SAM's image encoder runs on a CPU, bytes: its global
#: attention layers free and allocate maps of ~800 MB each (64 x 64 tokens, 12 heads); kept,
#: a 1024-px tile is encoded 1.35 times faster (ViT-B, 2 threads: 6.4 against 8.7 s; 0.8 instead
#: of 3.9 million page faults) for a peak ~0.9 GB higher (4.7 against 3.8 GB; BENCHMARKS.md "SAM")
ENCODER_KEPT_BLOCK_BYTES = 2**30

#: neighbouring SAM tiles share this many typical crystal diameters: a crystal up to this size lies
#: whole in one tile (real outlines: 39 of 2,207 objects are larger, BENCHMARKS.md "Fourth round")
TILE_OVERLAP_CRYSTAL_DIAMETERS = 4.0


def tile_overlap_px(*, typical_diameter_um: float, max_crystal_area_um2: float, work_pixel_size_um: float,
                    tile_px: int) -> int:
    """Overlap of neighbouring SAM tiles at the working scale, px: four typical crystal diameters
    (:data:`TILE_OVERLAP_CRYSTAL_DIAMETERS`), but never more than the largest crystal kept or half
    a tile. It follows the crystal scale, not the area limit alone: the limit is wide (11
    diameters by default), and an overlap that large needs up to 1.6 times the tiles
    (BENCHMARKS.md, "Fifth round")."""
    typical_px = typical_diameter_um / work_pixel_size_um
    largest_px = 2 * math.sqrt(max_crystal_area_um2 / math.pi) / work_pixel_size_um
    return int(min(TILE_OVERLAP_CRYSTAL_DIAMETERS * typical_px, largest_px, tile_px // 2))


@dataclass
class SamRunStatistics:
    """What one SAM segmentation cost."""

    decoder_prompts: int = 0
    tiles: int = 0
    working_pixel_size_um: float = 0.0
    encoder_seconds: float = 0.0
    decoder_seconds: float = 0.0
    masks_proposed: int = 0
    masks_kept: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def _innermost_point(mask: Array) -> tuple[int, int]:
    """(row, col) of the pixel farthest from the mask's edge: a point prompt surely inside it."""
    distance = ndi.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    row, col = np.unravel_index(int(np.argmax(distance)), mask.shape)
    return int(row), int(col)


@dataclass
class SamProposals:
    """Every mask SAM proposed for one image, at the working scale, before selection."""

    masks: list[CandidateMask]
    foreground: Array
    work_shape: tuple[int, int]
    image_shape: tuple[int, ...]
    statistics: SamRunStatistics


def _box_nms(masks: list[CandidateMask], threshold: float) -> list[CandidateMask]:
    """SAM's box non-maximum suppression (torchvision ``batched_nms`` on mask boxes, by predicted IoU)."""
    if len(masks) < 2 or threshold >= 1:
        return list(masks)
    torch = import_torch()
    torchvision = import_torchvision()
    boxes = torch.tensor([[m.left, m.top, m.left + m.mask.shape[1] - 1, m.top + m.mask.shape[0] - 1] for m in masks],
                         dtype=torch.float)
    scores = torch.tensor([m.score for m in masks], dtype=torch.float)
    keep = torchvision.ops.batched_nms(boxes, scores, torch.zeros(len(masks), dtype=torch.long), threshold)
    return [masks[i] for i in sorted(keep.tolist())]


class SamCrystalSegmenter:
    """Segments crystals with a loaded SAM; ``segment`` returns raw labels and run statistics."""

    sees_raw_image = False

    def __init__(self, sam: LoadedSam, config: SamConfig = SamConfig(), prompter: Any = None,
                 contrast_judge: ContrastJudge | None = None) -> None:
        """``prompter``: the segmenter whose crystals prompt SAM in prompt mode (a
        :class:`microcrystalnet.segment.CrystalSegmenter`); None: the threshold watershed.
        ``contrast_judge``: the judge of ``crystal_contrast: auto`` (:mod:`.contrast`); default the
        prompter's, else the shipped network's on the CPU (:class:`.contrast.ShippedNetworkJudge`)."""
        self.sam = sam
        self.config = config
        self.prompter = prompter
        self.contrast_judge = contrast_judge or getattr(prompter, "contrast_judge", None) or ShippedNetworkJudge()
        self.decoder_batch = config.decoder_batch or (2 if sam.device == "cpu" else 64)
        segment_anything = import_segment_anything()
        self._predictor = segment_anything.SamPredictor(sam.model)
        self._encode = self._predictor.set_image  # SAM's image encoder (the costly part of a tile)
        self._predictor.set_image = self._set_tile  # prompt mode and the automatic generator both come here
        self._generator_class = segment_anything.SamAutomaticMaskGenerator
        #: tile content -> (embedding, original size, input size), inside :meth:`embeddings_kept`
        self._kept_embeddings: dict[str, tuple[Any, Any, Any]] | None = None

    @contextlib.contextmanager
    def embeddings_kept(self) -> Iterator[None]:
        """Within this block SAM encodes each distinct tile once and keeps its embedding (4 MB) for
        every later run on the same tile: for running SAM on the same images several times, as
        tuning does (prompt mode and each grid density: one encoder pass per tile, not three)."""
        self._kept_embeddings = {}
        try:
            yield
        finally:
            self._kept_embeddings = None

    def _set_tile(self, tile_rgb: Array, image_format: str = "RGB") -> None:
        kept = self._kept_embeddings
        if kept is None:
            self._encoded(tile_rgb, image_format)
            return
        key = f"{tile_rgb.shape}{image_format}{hashlib.blake2b(np.ascontiguousarray(tile_rgb).data).hexdigest()}"
        predictor = self._predictor
        if key in kept:
            predictor.features, predictor.original_size, predictor.input_size = kept[key]
            predictor.is_image_set = True
        else:
            self._encoded(tile_rgb, image_format)
            kept[key] = (predictor.features, predictor.original_size, predictor.input_size)

    def _encoded(self, tile_rgb: Array, image_format: str) -> None:
        """SAM's image encoder on one tile; on a CPU with freed memory kept (``ENCODER_KEPT_BLOCK_BYTES``)."""
        if self.sam.device != "cpu":
            self._encode(tile_rgb, image_format)
            return
        with freed_memory_kept(ENCODER_KEPT_BLOCK_BYTES):
            self._encode(tile_rgb, image_format)

    def describe(self) -> dict[str, Any]:
        prompts = self.prompter.describe()["backend"] if self.prompter is not None else "watershed"
        return {"backend": "sam", "mode": self.config.mode, **self.sam.describe(),
                **({"prompts": prompts} if self.config.mode == "prompt" else {})}

    @property
    def prompter_sees_raw_image(self) -> bool:
        """Whether the prompter segments the image as read (the learned segmenter: it was trained on
        raw images) while SAM sees the preprocessed one: the analysis then hands both."""
        return self.prompter is not None and self.prompter.sees_raw_image

    def segment(self, image: Array, pixel_size_um: float, segment_config: SegmentConfig, *,
                prompt_image: Array | None = None) -> tuple[Array, dict[str, Any]]:
        """Labels (int32 (Y, X), not yet tidied) of ``image`` (float (Y, X) in [0, 1]) and run
        statistics; ``prompt_image``: the image the prompter segments instead (see :meth:`propose`)."""
        proposals = self.propose(image, pixel_size_um, segment_config, prompt_image=prompt_image)
        return self.finish(proposals, self.config), asdict(proposals.statistics)

    def propose(self, image: Array, pixel_size_um: float, segment_config: SegmentConfig,
                config: SamConfig | None = None, *, prompt_image: Array | None = None) -> "SamProposals":
        """Run SAM (the expensive part) and return every mask it proposes, with its scores.

        ``prompt_image`` (float (Y, X) in [0, 1], the shape of ``image``): what the prompter of
        prompt mode segments, where it is not ``image`` (:attr:`prompter_sees_raw_image`: the
        image as read, while SAM sees the preprocessed one); None: ``image``."""
        config = config or self.config
        if prompt_image is not None and prompt_image.shape != image.shape:
            raise ValueError(f"the prompt image ({prompt_image.shape}) must have the shape of the image "
                             f"({image.shape})")
        if segment_config.crystal_size_px is not None:  # pixels of this image, not of the working scale
            segment_config = segment_config.updated(crystal_size_um=segment_config.crystal_size_px * pixel_size_um,
                                                    crystal_size_px=None)
        statistics = SamRunStatistics()
        work_size = working_pixel_size(image.shape, pixel_size_um, segment_config.min_crystal_area_um2, config)
        statistics.working_pixel_size_um = work_size
        scale = pixel_size_um / work_size
        work_shape = (max(1, round(image.shape[0] * scale)), max(1, round(image.shape[1] * scale)))

        def at_work_scale(pixels: Array) -> Array:
            return resize(pixels, work_shape, order=1, anti_aliasing=scale < 1, preserve_range=True).astype(np.float32)

        work_image = at_work_scale(image)
        min_area_px = segment_config.min_crystal_area_um2 / work_size ** 2
        if config.mode == "prompt" and self.prompter is not None:
            seen = work_image if prompt_image is None else at_work_scale(prompt_image)
            candidates = self.prompter.segment(seen, work_size, segment_config)[0]
            foreground = ndi.binary_dilation(candidates > 0, iterations=2)  # its crystals, with their edges
        else:
            foreground = crystal_foreground(work_image, work_size, segment_config.watershed, min_area_px)
            candidates = (segment_watershed(work_image, work_size, segment_config.watershed, min_area_px)
                          if config.mode == "prompt" else None)
        typical_diameter_um = configured_diameter_px(segment_config, pixel_size_um) * pixel_size_um
        overlap = tile_overlap_px(typical_diameter_um=typical_diameter_um,
                                  max_crystal_area_um2=segment_config.max_crystal_area_um2,
                                  work_pixel_size_um=work_size, tile_px=config.tile_px)
        windows = tile_windows(work_shape, config.tile_px, overlap)
        statistics.tiles = len(windows)
        masks: list[CandidateMask] = []
        rgb = np.repeat(np.round(work_image * 255).astype(np.uint8)[..., None], 3, axis=2)
        for window in windows:
            top, left, height, width = window
            tile_rgb = rgb[top:top + height, left:left + width]
            started = time.perf_counter()
            if config.mode == "prompt":
                self._predictor.set_image(tile_rgb)
                statistics.encoder_seconds += time.perf_counter() - started
                started = time.perf_counter()
                tile_masks = self._prompted_masks(window, candidates, foreground, min_area_px, statistics)
            else:  # the generator computes the embedding itself; its time counts as decoding
                tile_masks = self._automatic_masks(tile_rgb, window, statistics, config)
            statistics.decoder_seconds += time.perf_counter() - started
            masks += [m for m in tile_masks if inside_tile_interior(m, window, work_shape)]
        statistics.masks_proposed = len(masks)
        return SamProposals(masks, foreground, work_shape, image.shape, statistics)

    @staticmethod
    def finish(proposals: "SamProposals", config: SamConfig) -> Array:
        """Labels from proposals: automatic mode's thresholds and box NMS (as SAM applies them),
        then pore, cluster and duplicate removal, painted and scaled back to the image."""
        masks = proposals.masks
        if config.mode == "automatic":
            masks = [m for m in masks if m.score >= config.pred_iou_thresh and m.stability >= config.stability_score_thresh]
            masks = _box_nms(masks, config.box_nms_thresh)
        kept = drop_container_masks(drop_pore_masks(masks, proposals.foreground, config.min_crystal_fraction))
        proposals.statistics.masks_kept = len(kept)
        labels = masks_to_labels(kept, proposals.work_shape, config.duplicate_fraction)
        if proposals.work_shape != tuple(proposals.image_shape):
            labels = resize(labels, proposals.image_shape, order=0, preserve_range=True,
                            anti_aliasing=False).astype(np.int32)
        return labels

    def _decode(self, points: Array, boxes: Array | None, window, statistics: SamRunStatistics,
                multimask: bool) -> list[CandidateMask]:
        """Decode prompts (points (N, 2) as (x, y) in the tile; boxes (N, 4) x0 y0 x1 y1) in batches.

        SAM's predictor upsamples every mask to the whole tile (256 -> 1024 px, then to the tile's
        size); here each mask is upsampled only inside its own box, which gives the same pixels
        (bilinear interpolation is local) at a fraction of the cost.
        """
        torch = import_torch()
        predictor, model = self._predictor, self.sam.model
        masks: list[CandidateMask] = []
        for start in range(0, len(points), self.decoder_batch):
            chunk = slice(start, start + self.decoder_batch)
            point_tensor = torch.as_tensor(points[chunk, None, :], dtype=torch.float, device=predictor.device)
            coords = predictor.transform.apply_coords_torch(point_tensor, predictor.original_size)
            labels = torch.ones(coords.shape[:2], dtype=torch.int, device=predictor.device)
            box_tensor = None
            if boxes is not None:
                box_tensor = predictor.transform.apply_boxes_torch(
                    torch.as_tensor(boxes[chunk], dtype=torch.float, device=predictor.device), predictor.original_size)
            with torch.inference_mode():
                sparse, dense = model.prompt_encoder(points=(coords, labels), boxes=box_tensor, masks=None)
                low_res, scores = model.mask_decoder(
                    image_embeddings=predictor.features, image_pe=model.prompt_encoder.get_dense_pe(),
                    sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense, multimask_output=multimask)
            statistics.decoder_prompts += len(coords)
            best = scores.argmax(dim=1)
            chosen = low_res[torch.arange(len(best)), best]
            for logits, score in zip(chosen, scores[torch.arange(len(best)), best].tolist()):
                candidate = self._upsampled_mask(logits, score, window)
                if candidate is not None:
                    masks.append(candidate)
        return masks

    def _upsampled_mask(self, low: Any, score: float, window) -> CandidateMask | None:
        """A low-resolution (256 x 256) SAM mask as a full-resolution mask, computed in its box only.

        SAM's ``postprocess_masks`` upsamples 4x (bilinear, align_corners=False) to the padded
        1024-px input, crops the tile's part and resizes it to the tile. The first step only
        looks at neighbouring pixels, so done on the mask's box plus a 2-pixel margin it gives
        the same values inside the box; the second is sampled at exactly the coordinates
        ``F.interpolate`` uses. The result equals SAM's mask without computing whole tiles.
        """
        torch = import_torch()
        functional = torch.nn.functional
        predictor = self._predictor
        threshold = predictor.model.mask_threshold
        positive = torch.nonzero(low > threshold)
        if positive.numel() == 0:
            return None
        factor = predictor.model.image_encoder.img_size // low.shape[-1]
        r0, c0 = (positive.min(dim=0).values - 2).clamp(min=0).tolist()
        r1 = min(int(positive[:, 0].max()) + 3, low.shape[0])
        c1 = min(int(positive[:, 1].max()) + 3, low.shape[1])
        upsampled = functional.interpolate(low[None, None, r0:r1, c0:c1].float(), scale_factor=factor,
                                           mode="bilinear", align_corners=False)[0, 0]
        input_h, input_w = predictor.input_size
        tile_h, tile_w = predictor.original_size

        def tile_range(start: int, stop: int, input_length: int, tile_length: int) -> tuple[int, int]:
            low_edge = max(int(math.floor((start * factor + 0.5) * tile_length / input_length - 0.5)), 0)
            high_edge = min(int(math.ceil((stop * factor + 0.5) * tile_length / input_length + 0.5)), tile_length)
            return low_edge, high_edge

        top, bottom = tile_range(r0, r1, input_h, tile_h)
        left, right = tile_range(c0, c1, input_w, tile_w)
        if bottom <= top or right <= left:
            return None

        def source(first: int, last: int, input_length: int, tile_length: int, offset: int, size: int):
            # F.interpolate(align_corners=False): source = (target + 0.5) * in / out - 0.5, clamped
            position = (torch.arange(first, last, dtype=torch.float64) + 0.5) * input_length / tile_length - 0.5
            position = position.clamp(0, input_length - 1) - offset * factor
            return (position / max(size - 1, 1) * 2 - 1).float()

        grid_y = source(top, bottom, input_h, tile_h, r0, upsampled.shape[0])
        grid_x = source(left, right, input_w, tile_w, c0, upsampled.shape[1])
        grid = torch.stack(torch.meshgrid(grid_x, grid_y, indexing="xy"), dim=-1)[None].to(upsampled.device)
        sampled = functional.grid_sample(upsampled[None, None], grid, mode="bilinear", padding_mode="border",
                                         align_corners=True)[0, 0]
        mask = (sampled > threshold).cpu().numpy()
        return CandidateMask.from_full(mask, float(score), (window[0] + top, window[1] + left))

    def _prompted_masks(self, window, candidates: Array, foreground: Array, min_area_px: float,
                        statistics: SamRunStatistics) -> list[CandidateMask]:
        top, left, height, width = window
        tile_labels = candidates[top:top + height, left:left + width]
        points, boxes = [], []
        for index, box in enumerate(ndi.find_objects(tile_labels), start=1):
            if box is None:
                continue
            row, col = _innermost_point(tile_labels[box] == index)
            margin_y = self.config.box_margin_fraction * (box[0].stop - box[0].start)
            margin_x = self.config.box_margin_fraction * (box[1].stop - box[1].start)
            points.append((box[1].start + col, box[0].start + row))
            boxes.append((max(box[1].start - margin_x, 0), max(box[0].start - margin_y, 0),
                          min(box[1].stop + margin_x, width), min(box[0].stop + margin_y, height)))
        masks = self._decode(np.asarray(points, float).reshape(-1, 2), np.asarray(boxes, float).reshape(-1, 4),
                             window, statistics, multimask=False) if points else []
        if not self.config.second_pass:
            return masks
        covered = np.zeros((height, width), bool)
        for mask in masks:
            covered[mask.top - top:mask.top - top + mask.mask.shape[0],
                    mask.left - left:mask.left - left + mask.mask.shape[1]] |= mask.mask
        uncovered, count = ndi.label(foreground[top:top + height, left:left + width] & ~covered)
        extra_points = []
        for index, box in enumerate(ndi.find_objects(uncovered), start=1):
            region = uncovered[box] == index
            if box is not None and region.sum() >= min_area_px:
                row, col = _innermost_point(region)
                extra_points.append((box[1].start + col, box[0].start + row))
        statistics.extra["second_pass_prompts"] = statistics.extra.get("second_pass_prompts", 0) + len(extra_points)
        if extra_points:
            masks += self._decode(np.asarray(extra_points, float), None, window, statistics, multimask=True)
        return masks

    def _automatic_masks(self, tile_rgb: Array, window, statistics: SamRunStatistics,
                         config: SamConfig) -> list[CandidateMask]:
        generator = self._generator_class(
            self.sam.model, points_per_side=config.points_per_side, pred_iou_thresh=config.pred_iou_thresh,
            stability_score_thresh=config.stability_score_thresh, box_nms_thresh=config.box_nms_thresh,
            points_per_batch=config.decoder_batch or self.decoder_batch * 2)
        generator.predictor = self._predictor  # the same model, and its embeddings kept where asked
        records = generator.generate(tile_rgb)
        statistics.decoder_prompts += config.points_per_side ** 2
        masks = []
        for record in records:
            candidate = CandidateMask.from_full(record["segmentation"], float(record["predicted_iou"]),
                                                (window[0], window[1]), float(record["stability_score"]))
            if candidate is not None:
                masks.append(candidate)
        return masks
