"""The crystal classes of the paper and how they are shown.

The paper's scheme (its Figure 1) combines euhedral and subhedral crystals, which gives four
classes: rhombic (RES), polyhedral (PES), amorphous (AA) and rounded/spherical (RA/SA; the
paper calls this class RA in Section 1 and SA in its results).

Colours are from the Okabe-Ito palette (Okabe & Ito 2008), chosen so that the four classes stay
distinguishable with the common forms of colour blindness and on a gray SEM image.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CrystalClass:
    """One crystal class.

    ``code`` is what tables and the Fiji Results show; ``file_code`` is the same code made
    safe for file and ROI names (an ImageJ RoiSet.zip cannot hold a ``/`` in a ROI name).
    """

    code: str
    file_code: str
    name: str
    colour_hex: str

    @property
    def colour_rgb(self) -> tuple[int, int, int]:
        """Colour as 8-bit (R, G, B)."""
        value = self.colour_hex.lstrip("#")
        return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


RES = CrystalClass("RES", "RES", "rhombic, euhedral to subhedral", "#E69F00")
PES = CrystalClass("PES", "PES", "polyhedral, euhedral to subhedral", "#56B4E9")
AA = CrystalClass("AA", "AA", "amorphous, anhedral", "#009E73")
RASA = CrystalClass("RA/SA", "RA-SA", "rounded/spherical, anhedral", "#CC79A7")

#: The classes in the order used for every table column and plot of this package.
CRYSTAL_CLASSES: tuple[CrystalClass, ...] = (RES, PES, AA, RASA)
CLASS_CODES: tuple[str, ...] = tuple(c.code for c in CRYSTAL_CLASSES)

#: A crystal whose most probable class is not probable enough (``ClassifyConfig.unclear_below``);
#: the paper's labelling sheets mark such crystals "unclear" too. Not a class any model predicts.
UNCLEAR = CrystalClass("unclear", "unclear", "no class probable enough", "#F0E442")
#: What a crystal in the results can be: one of the four classes, or unclear.
RESULT_CLASSES: tuple[CrystalClass, ...] = (*CRYSTAL_CLASSES, UNCLEAR)
RESULT_CODES: tuple[str, ...] = tuple(c.code for c in RESULT_CLASSES)

_BY_CODE = {c.code: c for c in RESULT_CLASSES} | {c.file_code: c for c in RESULT_CLASSES}


def class_by_code(code: str) -> CrystalClass:
    """Return the class for a code such as ``"RES"``, ``"RA/SA"``, ``"RA-SA"`` or ``"unclear"``."""
    try:
        return _BY_CODE[code]
    except KeyError:
        raise ValueError(f"unknown crystal class {code!r}; known: {', '.join(RESULT_CODES)}") from None


#: Words a petrographer may use for each class (labelling sheets, folder names, ROI names).
_LABEL_WORDS = {"RES": RES, "RHOMBIC": RES, "RHOMB": RES, "PES": PES, "POLYHEDRAL": PES, "AA": AA, "AMORPHOUS": AA,
                "RA/SA": RASA, "RA-SA": RASA, "RASA": RASA, "RA": RASA, "SA": RASA, "SPHERICAL": RASA,
                "ROUNDED": RASA}
#: Labels that say the crystal's class is not known; such crystals are left out of training.
UNCLEAR_LABELS = frozenset({"UNCLEAR", "UNKNOWN", "UNSURE", "OTHER", "?"})


def _label_tokens(label: str) -> list[str]:
    text = label.strip().upper().replace("RA-SA", "RASA").replace("RA/SA", "RASA")
    return text.replace("_", " ").replace("-", " ").replace(".", " ").split()


def class_from_label(label: str) -> CrystalClass | None:
    """The class a free-text label names, or None when it names none or an unclear class.

    Accepts codes and words in any case, alone or as a part of a ROI name split at ``-``, ``_``,
    spaces or dots: ``"RES"``, ``"rhombic"``, ``"0001-RES"``, ``"RA/SA"``, ``"RA-SA"``,
    ``"spherical_12"``. A label naming two different classes gives None.
    """
    text = label.strip().upper()
    if text in _LABEL_WORDS:
        return _LABEL_WORDS[text]
    found = {_LABEL_WORDS[token] for token in _label_tokens(label) if token in _LABEL_WORDS}
    return found.pop() if len(found) == 1 else None


def is_unclear_label(label: str) -> bool:
    """Whether a label marks the crystal's class as unclear (``"unclear"``, ``"0007-unknown"``, ``"?"``)."""
    return label.strip().upper() in UNCLEAR_LABELS or any(t in UNCLEAR_LABELS for t in _label_tokens(label))
