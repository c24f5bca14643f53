"""How many local workers a batch starts: one per core, as far as the machine's memory allows for
what each worker loads."""

from __future__ import annotations

from microcrystalnet.batch import worker_count
from microcrystalnet.config import AnalysisConfig

SAM = AnalysisConfig().updated(segment={"backend": "sam"})


def test_workers_follow_the_cores_and_the_memory_each_one_needs():
    default = AnalysisConfig()
    assert worker_count(cores=2, memory_gb=24, config=default) == 2
    assert worker_count(cores=8, memory_gb=16, config=default) == 5  # 3 GB each
    assert worker_count(cores=2, memory_gb=2, config=default) == 1  # never none
    assert worker_count(cores=4, memory_gb=None, config=default) == 4  # memory unknown


def test_sam_and_noise2void_workers_need_more_memory():
    # SAM ViT-B on a CPU: weights and image encoder (3.9 GB) beside the default analysis (3 GB)
    assert worker_count(cores=2, memory_gb=8, config=AnalysisConfig()) == 2
    assert worker_count(cores=2, memory_gb=8, config=SAM) == 1
    assert worker_count(cores=4, memory_gb=16, config=SAM) == 2
    assert worker_count(cores=4, memory_gb=16, config=SAM.updated(segment={"sam": {"model_type": "vit_h"}})) == 1
    denoised = AnalysisConfig().updated(preprocess={"n2v_model": "n2v.zip"})
    assert worker_count(cores=4, memory_gb=12, config=AnalysisConfig()) == 4
    assert worker_count(cores=4, memory_gb=12, config=denoised) == 3
