"""SAM on a synthetic 2048 x 2048 scene: SAM's default automatic mask generator vs our automatic
settings vs prompt-driven mode, in one run on one machine.

No SAM weights can be downloaded in this environment, so by default SAM ViT-B runs with random
weights: seconds, decoder prompts and memory are those of the real architecture, but the masks
are meaningless and no F1 is reported for SAM (the watershed, which makes the prompts, is scored).
With real weights (--checkpoint, or the official file in the cache), F1 is reported too.

    scripts/bench bench/bench_sam.py [--checkpoint sam_vit_b_01ec64.pth] [--modes default,tuned,prompt]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

from microcrystalnet.config import SamConfig, SegmentConfig
from microcrystalnet.frameworks import import_segment_anything, import_torch, torch_device
from microcrystalnet.io import to_unit_range
from microcrystalnet.metrics import match_instances
from microcrystalnet.segment import segment_crystals
from microcrystalnet.segment.sam import LoadedSam, SamCrystalSegmenter, load_sam
from microcrystalnet.synth import SceneSpec, render_scene

#: SAM's own defaults for its automatic mask generator
SAM_DEFAULT = SamConfig(mode="automatic", points_per_side=32, pred_iou_thresh=0.88, stability_score_thresh=0.95,
                        box_nms_thresh=0.7)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, help="SAM ViT-B weights; default: random weights")
    parser.add_argument("--modes", default="prompt,tuned,default")
    arguments = parser.parse_args()
    torch = import_torch()
    if arguments.checkpoint:
        sam, weights = load_sam("vit_b", arguments.checkpoint), "given checkpoint"
    else:
        segment_anything = import_segment_anything()
        torch.manual_seed(0)
        model = segment_anything.sam_model_registry["vit_b"](checkpoint=None).eval()
        device = torch_device(None, user="SAM")
        sam, weights = LoadedSam(model.to(device), "vit_b", device, Path("random"), "random", False), "random"
    scene = render_scene(SceneSpec(seed=0))
    image = to_unit_range(scene.image)
    report = {"scene": "synthetic 2048 x 2048, 10 nm/px", "true_crystals": scene.n_crystals, "weights": weights,
              "device": sam.device, "torch_threads": torch.get_num_threads(), "runs": {}}
    configs = {"prompt": SamConfig(), "tuned": SamConfig().updated(mode="automatic"), "default": SAM_DEFAULT}
    for name in arguments.modes.split(","):
        segmenter = SamCrystalSegmenter(sam, configs[name])
        started = time.perf_counter()
        result = segment_crystals(image, scene.pixel_size_um, SegmentConfig(backend="sam"), segmenter)
        seconds = time.perf_counter() - started
        run = {"seconds": seconds, **{k: result.statistics[k] for k in ("decoder_prompts", "tiles", "encoder_seconds",
                                                                        "decoder_seconds", "masks_proposed",
                                                                        "masks_kept", "working_pixel_size_um")},
               "extra": result.statistics["extra"], "crystals": int(result.labels.max()),
               "peak_rss_mib_so_far": peak_rss_mib()}
        if weights != "random":
            run["f1_iou50"] = match_instances(scene.labels, result.labels).f1
        report["runs"][name] = run
        print(name, json.dumps(run), flush=True)
    watershed = segment_crystals(image, scene.pixel_size_um)
    report["watershed_prompt_source_f1_iou50"] = match_instances(scene.labels, watershed.labels).f1
    if "prompt" in report["runs"] and "default" in report["runs"]:
        report["speedup_prompt_vs_default"] = report["runs"]["default"]["seconds"] / report["runs"]["prompt"]["seconds"]
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    sys.exit(main())
