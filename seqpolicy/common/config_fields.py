"""What a config dataclass says about each of its fields: its type, its allowed values, its docstring.

Configs (``DTTrainConfig``, ``RunSettings``, ...) are frozen dataclasses whose fields are flat ints, floats, bools
and strings, ``X | None`` where None means "work it out", and ``Literal[...]`` where only a few strings are
allowed. :func:`config_fields` gives each field's parts as plain data, for the command line
(``seqpolicy.cli._config_options`` turns each into an option) and for validation (:func:`check_choices`).

Docstrings: a field's documentation is the string written under it (the convention of PEP 257, Sphinx and tyro).
Python's compiler drops such strings, so they exist only in the source: :func:`field_docs` reads the class's
source with :mod:`ast`, the standard library's own parser (tyro reads the same strings from source too, with
``tokenize``). The alternatives that keep docs at run time would rewrite every field: ``dataclasses.field(doc=...)``
needs Python 3.13 (seqpolicy supports 3.10), and ``Annotated[int, "doc"]`` moves the doc into the type. Without the
source (a frozen or ``.pyc``-only install) the docs are empty, never an error.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import textwrap
import typing
from typing import Any, Literal, NamedTuple


class ConfigField(NamedTuple):
    """One field of a config dataclass, as plain data."""

    name: str
    kind: Any
    """``int``, ``float``, ``bool``, ``str`` or a ``Literal[...]`` (None taken out: see ``optional``)."""
    optional: bool
    """Whether None is allowed (``int | None``)."""
    choices: tuple | None
    """The values of a ``Literal[...]`` field, in their order; None for the other kinds."""
    doc: str
    """The field's docstring on one line ("" without one)."""


@functools.cache
def config_fields(cls: type) -> tuple[ConfigField, ...]:
    """The fields of the dataclass ``cls`` (inherited ones first, as ``dataclasses.fields`` orders them).

    Example:
        >>> from seqpolicy.training.settings import RunSettings
        >>> [f for f in config_fields(RunSettings) if f.name == "precision"][0].choices
        ('auto', 'fp32', 'bf16')
    """
    hints, docs = typing.get_type_hints(cls), field_docs(cls)
    out = []
    for f in dataclasses.fields(cls):
        kind, optional = _without_none(hints[f.name])
        choices = typing.get_args(kind) if typing.get_origin(kind) is Literal else None
        out.append(ConfigField(f.name, kind, optional, choices, docs.get(f.name, "")))
    return tuple(out)


def field_choices(cls: type) -> dict[str, tuple]:
    """The allowed values of each ``Literal``-typed field of ``cls``, by field name."""
    return {f.name: f.choices for f in config_fields(cls) if f.choices is not None}


def check_choices(config: Any) -> None:
    """Refuse a ``Literal``-typed field whose value is not one it lists (None passes where the type allows it).

    Raises:
        ValueError: ``DTTrainConfig.lr_schedule must be one of constant, cosine, got 'step'.``
    """
    for f in config_fields(type(config)):
        value = getattr(config, f.name)
        if f.choices is not None and value not in f.choices and not (f.optional and value is None):
            raise ValueError(f"{type(config).__name__}.{f.name} must be one of {', '.join(map(str, f.choices))}, "
                             f"got {value!r}.")


def field_docs(cls: type) -> dict[str, str]:
    """The docstring written under each field of a dataclass (and of its dataclass bases), each on one line."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):  # bases first, so a redeclared field takes the subclass's doc
        if dataclasses.is_dataclass(klass):
            docs.update(_attribute_docs(klass))
    return docs


@functools.cache
def _attribute_docs(klass: type) -> dict[str, str]:
    """``name: type = value`` followed by a string statement, in the body of ``klass`` itself."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
    except (OSError, TypeError):  # no source to read: help without docs
        return {}
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    return {node.target.id: " ".join(nxt.value.value.split()) for node, nxt in zip(body, body[1:], strict=False)
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and isinstance(nxt, ast.Expr)
            and isinstance(nxt.value, ast.Constant) and isinstance(nxt.value.value, str)}


def _without_none(hint: Any) -> tuple[Any, bool]:
    """``int | None`` -> (int, True); ``int`` -> (int, False); ``Literal['a', None]`` is left as it is."""
    args = typing.get_args(hint)
    if type(None) in args and typing.get_origin(hint) is not Literal:
        rest = tuple(a for a in args if a is not type(None))
        return (rest[0] if len(rest) == 1 else typing.Union[rest]), True  # noqa: UP007 (a runtime union)
    return hint, False
