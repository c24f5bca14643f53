"""The preprocessing chain on a synthetic 2048 x 2048 SEM scene: SNR, PSNR and SSIM after every
step (beside the paper's reported SNR), seconds per step, and Noise2Void training time.

Noise2Void is trained on the noisy scene itself (self-supervised, as a user would on their own
images) for --steps batches first, after non-local means as `microcrystalnet n2v train` does by
default. Synthetic scene: PSNR/SSIM are against its noise-free image.

    scripts/bench bench/bench_preprocess.py [--steps 300]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

from microcrystalnet.config import PreprocessConfig
from microcrystalnet.io import to_unit_range
from microcrystalnet.metrics import match_instances
from microcrystalnet.preprocess import preprocess, train_noise2void
from microcrystalnet.segment import segment_crystals
from microcrystalnet.synth import SceneSpec, render_scene

#: SNR (dB) the paper reports after each step (section 4.2); closing: not given
PAPER_SNR_DB = {"input": 10, "nlm": 16, "n2v": 19, "unsharp": 22, "opening": 25}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    arguments = parser.parse_args()
    logging.getLogger("lightning").setLevel(logging.ERROR)
    scene = render_scene(SceneSpec(seed=21))
    image = to_unit_range(scene.image)
    work = Path(tempfile.mkdtemp(prefix="mcn-bench-n2v-"))
    started = time.perf_counter()
    after_nlm, _ = preprocess(image, scene.pixel_size_um, PreprocessConfig(steps=("nlm",)))
    model = train_noise2void([after_nlm], work / "n2v.zip", steps=arguments.steps, work_dir=work / "train",
                             trained_after=("nlm",))
    training = time.perf_counter() - started
    result, reports = preprocess(image, scene.pixel_size_um, PreprocessConfig(), model, scene.clean)
    raw_f1 = match_instances(scene.labels, segment_crystals(image, scene.pixel_size_um).labels).f1
    chain_f1 = match_instances(scene.labels, segment_crystals(result, scene.pixel_size_um).labels).f1
    report = {"scene": "synthetic 2048 x 2048, 10 nm/px", "n2v_training_steps": arguments.steps,
              "n2v_training_s": training, "n2v_training_s_per_1000_steps": training / arguments.steps * 1000,
              "steps": [{"step": r.step, "applied": r.applied, "snr_db": r.snr_db, "paper_snr_db": PAPER_SNR_DB.get(r.step),
                         "psnr_db": r.psnr_db, "ssim": r.ssim, "seconds": r.seconds} for r in reports],
              "watershed_f1_raw": raw_f1, "watershed_f1_after_chain": chain_f1}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    sys.exit(main())
