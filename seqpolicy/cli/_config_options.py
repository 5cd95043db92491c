"""Command-line options from a config dataclass: one generic mapping from a field (type, docstring) to argparse.

=====================  ===========================================================================
field type             option
=====================  ===========================================================================
``Literal["a", "b"]``  ``--name {a,b}`` (the values, in the order the type lists them)
``bool``               ``--name [{true,false}]`` (alone: true)
``int`` / ``float``    ``--name N`` / ``--name X``; with ``| None`` also ``--name none``
``str``                ``--name NAME``
=====================  ===========================================================================

The help is the field's docstring, then what the caller says of its default. Options default to nothing
(``argparse.SUPPRESS``): the namespace holds only the flags given, which the caller applies on top of whichever
config it starts from (a recipe, a checkpoint's settings), so that the defaults live in the config alone.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from typing import Any

from seqpolicy.common.config_fields import ConfigField, config_fields


def add_config_options(cls: type, group: Callable[[str], Any], default_note: Callable[[str], str],
                       names: Mapping[str, str] | None = None, hidden_aliases: Mapping[str, str] | None = None) -> None:
    """One option per field of the dataclass ``cls``.

    Args:
        cls: the config dataclass.
        group: field name -> the parser or argument group its option goes in.
        default_note: field name -> the text after its doc, in parentheses (e.g. ``default 128; cpu: 64``).
        names: field name -> its option, where that is not ``--field-name``.
        hidden_aliases: field name -> an older spelling still accepted, not shown in the help.
    """
    for f in config_fields(cls):
        option = (names or {}).get(f.name, f"--{f.name.replace('_', '-')}")
        kwargs = {"dest": f.name, "default": argparse.SUPPRESS, **_parsing(f)}
        help_text = f"{f.doc} ({default_note(f.name)})".replace("%", "%%")
        group(f.name).add_argument(option, help=help_text, **kwargs)
        if f.name in (hidden_aliases or {}):
            group(f.name).add_argument(hidden_aliases[f.name], help=argparse.SUPPRESS, **kwargs)


def _parsing(f: ConfigField) -> dict[str, Any]:
    """The argparse settings that parse a value of the field ``f``."""
    if f.choices is not None:
        return {"choices": f.choices}
    if f.kind is bool:
        return {"type": parse_bool, "nargs": "?", "const": True, "metavar": "{true,false}"}
    if f.kind in (int, float):
        return {"type": _or_none(f.kind) if f.optional else f.kind, "metavar": "N" if f.kind is int else "X"}
    if f.kind is str:
        return {"metavar": f.name.upper()}
    raise TypeError(f"{f.name}: a field of type {f.kind} has no command-line form (flat int, float, bool, str or "
                    "Literal only).")


def parse_bool(text: str) -> bool:
    """``true``/``false`` (also ``1``/``0``, ``yes``/``no``, ``on``/``off``) -> bool."""
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _or_none(kind: type) -> Callable[[str], Any]:
    """A number parser that also takes ``none`` (the field's "work it out from the data" value)."""
    def parse(text: str) -> Any:
        return None if text.lower() == "none" else kind(text)

    parse.__name__ = kind.__name__  # argparse names the type in its "invalid int value" message
    return parse
