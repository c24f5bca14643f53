"""Notices for the user that say where to change a setting, in the words of where they are shown.

A notice ("pixel size unknown: results are in pixels (give --pixel-size-nm to calibrate)") is
read on the command line, where a setting is an option, and in Fiji's Log, where it is a field of
the Analyze Crystals dialog or an ImageJ command. A :class:`Notice` is the command line's text
(it *is* that string: logs, report.html and summary.json's ``notices`` use it unchanged) and
carries the same text in Fiji's words as :attr:`Notice.fiji`, which summary.json keeps as
``fiji_notices`` for the plugin to show. The Fiji words name the dialog's fields as the dialog
labels them (``fiji_plugin/.../AnalyzeCrystals.java``); tests/e2e/test_fiji_outputs.py checks
each field named here is one of the dialog's.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Wording:
    """A part of a notice that differs between the command line (``cli``) and Fiji (``fiji``)."""

    cli: str
    fiji: str


def both_wordings(wording: Wording) -> str:
    """``wording`` for a message that either a command-line or a Fiji user reads."""
    return f"{wording.cli} (Fiji: {wording.fiji})"


class Notice(str):
    """A notice in the command line's words, with :attr:`fiji`: the same in Fiji's words."""

    fiji: str

    @classmethod
    def of(cls, *parts: str | Wording) -> Notice:
        """The notice made of ``parts`` in order: plain text (a :class:`Notice` contributes its own
        Fiji words) and :class:`Wording` parts."""
        notice = cls("".join(part.cli if isinstance(part, Wording) else part for part in parts))
        notice.fiji = "".join(part.fiji if isinstance(part, Wording) else fiji_wording(part) for part in parts)
        return notice

    def __reduce__(self):  # pickled across worker processes with both wordings
        return _rebuilt, (str(self), fiji_wording(self))


def _rebuilt(cli: str, fiji: str) -> Notice:
    notice = Notice(cli)
    notice.fiji = fiji
    return notice


def fiji_wording(notice: str) -> str:
    """``notice`` as Fiji shows it: a :class:`Notice`'s Fiji words, any other text as it is."""
    return str(getattr(notice, "fiji", notice))


SET_PIXEL_SIZE = Wording("give --pixel-size-nm", "set the pixel size in Image > Properties...")
GIVE_CRYSTAL_SIZE_UM = Wording("give the typical diameter with --crystal-size-um",
                               "give the typical diameter in the Crystal size field")
GIVE_CRYSTAL_SIZE_PX = Wording("give it with --crystal-size-px (or a pixel size and --crystal-size-um)",
                               "give it in the Crystal size field (in px; in the image's unit once "
                               "Image > Properties... gives it a pixel size)")
GIVE_CRYSTAL_SIZE_IN_PX = Wording("give the typical diameter with --crystal-size-px",
                                  "give the typical diameter in px in the Crystal size field")
GIVE_OTHER_CRYSTAL_SIZE = Wording("give --crystal-size-um", "give their diameter in the Crystal size field")
CRYSTAL_SIZE = Wording("--crystal-size-um, or --crystal-size-px without a pixel size", "the Crystal size field")
CRYSTAL_SIZE_SHORT = Wording("--crystal-size-um/--crystal-size-px", "Crystal size")
SET_BRIGHT_CRYSTALS = Wording("give --crystal-contrast bright", "choose bright in the Crystals field")
SET_DARK_CRYSTALS = Wording("give --crystal-contrast dark", "choose dark in the Crystals field")
MIN_AREA = Wording("--min-area-um2", "Min crystal area")
MAX_AREA = Wording("--max-area-um2", "Max crystal area")
KEEP_BORDER_CRYSTALS = Wording("leave out --exclude-border", "untick Exclude crystals on border")
KEEP_MARKS = Wording("give --keep-data-bar", "untick Exclude SEM data bar")
EXCLUDE_BORDER_CRYSTALS = Wording("analyse with --exclude-border", "tick Exclude crystals on border")
PASS_N2V_MODEL = Wording("pass it with --n2v-model n2v.zip", "choose it in the N2V model field")


def other_segmenter(backend: str) -> Wording:
    """Advice to try the other of the two segmenters that need no download than ``backend``."""
    other = "learned" if backend == "watershed" else "watershed"
    return Wording(f"--segmenter {other}", f"{other} in the Segmenter field")


#: the Analyze Crystals dialog's fields that the Fiji words name (as the dialog labels them)
FIJI_FIELDS = ("Crystal size", "Crystals", "Min crystal area", "Max crystal area", "Exclude crystals on border", "N2V model",
               "Settings file", "Segmenter")
