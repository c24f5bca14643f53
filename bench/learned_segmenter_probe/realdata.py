"""Real dev set loader (reads ../shared/real-sem in place; never copies): the package's reader of
reference sets (microcrystalnet.io.reference), as bench/bench_real_sem.py uses it."""
from pathlib import Path

from microcrystalnet.io.reference import read_reference_set

ROOT = Path(__file__).resolve().parents[3] / "shared" / "real-sem"  # ../shared beside the repository


def real_images():
    """(material, median diameter px, image (Y, X) float64, reference labels) of every image."""
    for image in read_reference_set(ROOT / "manifest.json"):
        yield image.material, image.median_diameter_px, image.pixels.astype("float64"), image.labels
