"""Training recipes (seqpolicy.training.recipes) and the names that were all "presets" before 0.2: the new
names, one lookup each, and the old names kept for one release."""

from __future__ import annotations

import dataclasses

import pytest

from seqpolicy.training import bc, dt, odt, tt
from seqpolicy.training.recipes import RECIPES, recipe


def test_a_recipe_is_looked_up_by_trainer_and_name():
    assert RECIPES["dt"] is dt.PRESETS and RECIPES["tt"] is tt.PRESETS and RECIPES["bc"] is bc.PRESETS
    assert RECIPES["odt"] is odt.PRESETS
    assert recipe("dt", "cpu") == dt.PRESETS["cpu"] and recipe("tt") == tt.PRESETS["paper"]
    assert recipe("bc", "pointreach", max_steps=3) == dataclasses.replace(bc.PRESETS["pointreach"], max_steps=3)
    assert recipe("tt", "cpu") == tt.TTTrainConfig.preset("cpu")  # the old lookup, kept for one release
    with pytest.raises(ValueError, match="Unknown tt training recipe 'gpu'.*cpu, paper, pointreach"):
        recipe("tt", "gpu")
    with pytest.raises(ValueError, match="Unknown trainer 'ppo'; choose one of dt, tt, bc, odt"):
        recipe("ppo", "paper")


def test_planner_searches_keep_their_old_names():
    from seqpolicy.agents.tt import PRESETS, SEARCHES, PlannerConfig

    assert PRESETS is SEARCHES
    assert PlannerConfig.preset("cpu", beam_width=3) == PlannerConfig.search("cpu", beam_width=3)
    with pytest.raises(ValueError, match="Unknown planner search 'fast'"):
        PlannerConfig.search("fast")


def test_the_zoo_manifest_keeps_its_old_names():
    from seqpolicy import zoo

    assert zoo.EnvPreset is zoo.EnvManifest and zoo.load_preset is zoo.load_manifest
    assert zoo.PRESET_FILE == zoo.MANIFEST_FILE == "manifest.json" and zoo.OLD_MANIFEST_FILE == "preset.json"
    assert zoo.load_manifest("Hopper-v4").default_agent


@pytest.mark.parametrize("trainer", ["dt", "tt", "bc", "odt"])
def test_recipe_and_its_old_spelling_preset_parse_to_the_same_config(trainer):
    from seqpolicy.cli import train as train_cli

    parser = train_cli.build_parser()
    for name in RECIPES[trainer]:
        argv = [trainer, "--dataset", "d", "--out", "o", "--seed", "4"]
        new = train_cli.parsed_config(parser.parse_args([*argv, "--recipe", name]))
        old = train_cli.parsed_config(parser.parse_args([*argv, "--preset", name]))
        assert new == old == recipe(trainer, name, seed=4), name
    assert train_cli.parsed_config(parser.parse_args([trainer, "--dataset", "d", "--out", "o"])) == recipe(trainer)


def test_train_help_shows_both_spellings(capsys):
    from seqpolicy.cli.train import main

    with pytest.raises(SystemExit):
        main(["dt", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--recipe {cpu,paper,pointreach}, --preset {cpu,paper,pointreach}" in out
    assert "--preset is its old spelling" in out and "the paper recipe's value; --recipe picks another" in out
