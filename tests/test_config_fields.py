"""seqpolicy.common.config_fields and the command-line options made from it (seqpolicy.cli._config_options)."""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import typing
from typing import Literal

import pytest

from seqpolicy.cli._config_options import add_config_options
from seqpolicy.common.config_fields import check_choices, config_fields, field_choices, field_docs


@dataclasses.dataclass(frozen=True)
class Toy:
    """A config with one field of each kind the command line takes."""

    mode: Literal["fast", "exact"] = "fast"
    """How to go."""
    steps: int = 3
    """How far."""
    scale: float | None = None
    """How big; None means the data's."""
    verbose: bool = False
    """Say more."""
    device: str = "cpu"

    def __post_init__(self) -> None:
        check_choices(self)


def test_fields_give_type_choices_and_docs_in_order():
    fields = config_fields(Toy)
    assert [f.name for f in fields] == ["mode", "steps", "scale", "verbose", "device"]
    assert fields[0].choices == ("fast", "exact") and fields[1].kind is int and fields[1].choices is None
    assert (fields[2].kind, fields[2].optional) == (float, True)
    assert field_docs(Toy) == {"mode": "How to go.", "steps": "How far.", "scale": "How big; None means the data's.",
                               "verbose": "Say more."}  # device has no docstring
    assert field_choices(Toy) == {"mode": ("fast", "exact")}


def test_a_literal_field_refuses_what_it_does_not_list():
    with pytest.raises(ValueError, match=r"Toy.mode must be one of fast, exact, got 'slow'\."):
        Toy(mode="slow")  # type: ignore[arg-type]


def test_every_trainer_refuses_a_value_its_literal_fields_do_not_list():
    """The activation, once checked only when the model was built, is refused with the config now."""
    from seqpolicy.training.dt import DTTrainConfig

    with pytest.raises(ValueError, match="DTTrainConfig.activation must be one of relu, gelu, gelu_new, tanh"):
        DTTrainConfig(activation="silu")  # type: ignore[arg-type]


def test_without_source_the_docs_are_empty_not_an_error(monkeypatch):
    from seqpolicy.common import config_fields as module

    @dataclasses.dataclass(frozen=True)
    class NoSource:
        x: int = 1
        """Never read."""

    monkeypatch.setattr(inspect, "getsource", lambda obj: (_ for _ in ()).throw(OSError("no source")))
    assert module.field_docs(NoSource) == {}


def test_literal_types_and_the_librarys_lists_agree():
    """Each set of choices is written once, as a Literal; the runtime lists are read from it or checked here."""
    from seqpolicy.agents.tt.discretizer import KINDS, DiscretizerKind
    from seqpolicy.agents.tt.planner import SEARCHES, SearchName
    from seqpolicy.models.gpt import ACTIVATIONS, Activation
    from seqpolicy.training.settings import PRECISIONS, Precision

    assert tuple(ACTIVATIONS) == typing.get_args(Activation)
    assert tuple(SEARCHES) == typing.get_args(SearchName)
    assert tuple(KINDS) == typing.get_args(DiscretizerKind) and tuple(PRECISIONS) == typing.get_args(Precision)


def test_one_mapping_from_field_to_option():
    parser = argparse.ArgumentParser()
    add_config_options(Toy, lambda name: parser, lambda name: f"default {getattr(Toy(), name)}",
                       names={"steps": "--n"}, hidden_aliases={"steps": "--steps"})
    args = parser.parse_args(["--mode", "exact", "--n", "4", "--scale", "none", "--verbose"])
    assert vars(args) == {"mode": "exact", "steps": 4, "scale": None, "verbose": True}
    assert vars(parser.parse_args(["--steps", "5", "--verbose", "false"])) == {"steps": 5, "verbose": False}
    assert vars(parser.parse_args([])) == {}  # only the flags given: the config keeps the defaults
    help_text = " ".join(parser.format_help().split())
    assert "--mode {fast,exact} How to go. (default fast)" in help_text and "--n N How far. (default 3)" in help_text
    assert "--device DEVICE (default cpu)" in help_text and "--steps" not in help_text


def test_a_field_with_no_command_line_form_is_refused():
    @dataclasses.dataclass(frozen=True)
    class Nested:
        sizes: tuple[int, ...] = (1, 2)

    with pytest.raises(TypeError, match="sizes: a field of type"):
        add_config_options(Nested, lambda name: argparse.ArgumentParser(), lambda name: "")
