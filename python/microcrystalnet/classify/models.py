"""Known classifier models: where to get them, how to check them, how to feed them.

Each model states its class order, input size and input scaling, so a model is never used with
the wrong preprocessing or its outputs read in the wrong order.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelCard:
    """Everything needed to fetch, verify and use one classifier.

    ``class_order[i]`` is the class code of output ``i``. Inputs: gray patches ``input_size`` x
    ``input_size`` with 8-bit values divided by 255 (values in [0, 1]; the only scaling any
    model here uses). ``patch_margin_fraction`` / ``patch_mask_background``: how the model's
    training patches were cut, when known; the analysis then cuts patches the same way.
    """

    name: str
    filename: str
    url: str
    sha256: str
    class_order: tuple[str, ...]
    input_size: int = 64
    description: str = ""
    other_filenames: tuple[str, ...] = ()
    patch_margin_fraction: float | None = None
    patch_mask_background: bool | None = None
    #: the command-line option that takes this file's path
    path_option: str = "--model"


_UPSTREAM = ("https://raw.githubusercontent.com/YaqoobAnsari/"
             "MicroCrystalNet-Advanced-Microcrystal-Classification-Using-Normalized-Sparse-Reduction-Blocks/"
             "e15f78bcfaa4a73ce810f29c979ee5cb87cdc0b1/")

#: The paper authors' released classifier (MIT licence). Its class order is the alphabetical
#: order of the training folders that Keras' flow_from_directory used: amorphous, polyhedral,
#: rhombic, spherical. The authors' own plotting code labels the outputs differently
#: (polyhedral, amorphous, rhombic, spherical); see the notes in BENCHMARKS.md on how the
#: order was checked.
REFERENCE_2023_11_19 = ModelCard(
    name="reference-2023-11-19",
    filename="microcrystalnet_reference_2023-11-19.h5",
    url=_UPSTREAM + "CNN_2023-11-19_11-47-51_run1.h5",
    sha256="374967e0e67e26e3a66dedb72fa00cf07ba411f0f36876edf21e4688fad9fcd0",
    class_order=("AA", "PES", "RES", "RA/SA"),
    input_size=64,
    description="Authors' released CNN (3 conv + 2 dense layers, 287,156 parameters; not the NSR "
                "architecture of the paper), trained on lmcDB; reported test accuracy 0.92.",
    other_filenames=("CNN_2023-11-19_11-47-51_run1.h5",),
)

MODEL_CARDS: dict[str, ModelCard] = {card.name: card for card in (REFERENCE_2023_11_19,)}
DEFAULT_MODEL = REFERENCE_2023_11_19.name
