"""The settings the Fiji dialog shows, from :class:`microcrystalnet.config.AnalysisConfig`, as a
Java properties resource of the plugin jar (written at build time by ``scripts/build-plugin``).

One source for defaults, choices and help texts, as StarDist's ``Opt.java`` keeps them in one
place: the Java side reads them from the jar (``microcrystalnet.fiji.Defaults``) and never
copies a value of Python's. For every setting, by its dotted path (``segment.min_crystal_area_um2``):

* ``<path>``: the default (None -> empty; a list -> comma-separated; booleans ``true``/``false``);
* ``<path>.choices``: the allowed values of a choice, comma-separated;
* ``<path>.help``: the setting's description (its docstring in ``config``), one line.

The classifier training recipe (:class:`microcrystalnet.config.TrainingConfig`, for Train Classifier
from ROIs) is there too, under ``training.`` (``training.epochs``).

Run: ``python -m microcrystalnet.fiji_defaults RESOURCES_FOLDER`` (writes ``RESOURCES_FOLDER/<RESOURCE>``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from .config import AnalysisConfig, Settings, TrainingConfig, choices_of, default_of

RESOURCE = "microcrystalnet/fiji/defaults.properties"  # beside microcrystalnet.fiji.Defaults in the jar


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(_text(item) for item in value)
    return str(value)


def plugin_defaults(section: type[Settings] = AnalysisConfig, prefix: str = "") -> dict[str, str]:
    """Every setting below ``section``: default, choices and help, keyed as described above."""
    entries: dict[str, str] = {}
    for name, field in section.model_fields.items():
        path = prefix + name
        default = default_of(section, name)
        if isinstance(default, Settings):
            entries.update(plugin_defaults(type(default), path + "."))
            continue
        entries[path] = _text(default)
        choices = choices_of(section, name)
        if choices and all(isinstance(choice, str) for choice in choices):
            entries[path + ".choices"] = ",".join(choices)
        if field.description:
            entries[path + ".help"] = " ".join(field.description.split())
    return entries


def _escaped(text: str, key: bool = False) -> str:
    """``text`` as java.util.Properties reads it back (ISO-8859-1 file: other characters as \\uXXXX)."""
    out = []
    for index, character in enumerate(text):
        if character in "\\=:#!" or (character == " " and (key or index == 0)):
            out.append("\\" + character)
        elif character in "\n\r\t":
            out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t"}[character])
        elif ord(character) < 0x20 or ord(character) > 0x7E:
            out.append(f"\\u{ord(character):04x}")
        else:
            out.append(character)
    return "".join(out)


def write_properties(path: str | Path, entries: dict[str, str], comment: str) -> Path:
    """``entries`` as a Java properties file at ``path`` (folders made), keys sorted, ``comment`` first."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"# {comment}"] + [f"{_escaped(key, key=True)}={_escaped(value)}" for key, value in sorted(entries.items())]
    path.write_text("\n".join(lines) + "\n", encoding="ascii")
    return path


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m microcrystalnet.fiji_defaults RESOURCES_FOLDER")
    write_properties(Path(sys.argv[1]) / RESOURCE, {**plugin_defaults(), **plugin_defaults(TrainingConfig, "training.")},
                     "Generated from microcrystalnet.config.AnalysisConfig and TrainingConfig (training.*) by "
                     "microcrystalnet.fiji_defaults; do not edit.")
