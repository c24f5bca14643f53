"""Freed memory kept for reuse inside the block, handed back after it."""

import subprocess
import sys

import pytest

#: allocates and frees a 64-MB array (above glibc's largest automatic mmap threshold, 32 MB) twice
#: inside the block (nested) and twice after it, printing the page faults of each pair
_PROBE = """
import resource
import numpy as np
from numpy._core.multiarray import _set_madvise_hugepage
from microcrystalnet.allocator import freed_memory_kept

_set_madvise_hugepage(False)  # 4-kB pages, whatever the system's transparent huge pages

def faults_of_two_allocations():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(2):
        np.ones(8 * 2**20).sum()
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

with freed_memory_kept() as active:
    assert active
    np.ones(8 * 2**20).sum()
    with freed_memory_kept():
        pass  # an inner block leaves the memory with the outer one
    inside = faults_of_two_allocations()
np.ones(8 * 2**20).sum()
print(inside, faults_of_two_allocations())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's (Linux)")
def test_freed_blocks_are_reused_inside_the_block_and_handed_back_after_it():
    done = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    inside, after = map(int, done.stdout.split())
    # 64 MB is 16,384 pages: reused inside the block, fetched afresh from the system after it
    assert inside < 16_384 * 0.1 and after > 2 * 16_384 * 0.9, (inside, after)
