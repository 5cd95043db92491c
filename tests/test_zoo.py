"""The zoo's lookups and load_agent's dispatch by artifact kind."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from seqpolicy.agents.loading import agent_kind, load_agent
from seqpolicy.common.artifact import ArtifactError
from seqpolicy.zoo import ZooError, agent_path, get_agent, load_manifest, moved_path, search_paths, zoo_env_ids

ENVS = Path(__file__).resolve().parent.parent / "envs"


@pytest.fixture
def zoo(tmp_path, monkeypatch):
    monkeypatch.setenv("SEQPOLICY_ENVS", str(tmp_path))
    folder = tmp_path / "Hopper-v4"
    (folder / "dt").mkdir(parents=True)
    (folder / "dt" / "agent.json").write_text(json.dumps({"format": "seqpolicy-agent", "kind": "dt"}))
    (folder / "td3-expert").mkdir()
    (folder / "td3-expert" / "td3-expert.zip").write_bytes(b"PK")
    (folder / "manifest.json").write_text(json.dumps({"env_id": "Hopper-v4", "default_agent": "dt",
                                                    "agents": {"sac": "sb3/sac.zip"}, "eval": {"episodes": 5}}))
    return folder


def test_preset_and_agent_paths(zoo):
    assert search_paths()[0] == zoo.parent
    preset = load_manifest("Hopper-v4")
    assert preset.folder == zoo and preset.default_agent == "dt" and preset.eval == {"episodes": 5}
    assert agent_path("Hopper-v4") == zoo / "dt"
    assert agent_path("Hopper-v4", "td3") == zoo / "td3-expert" / "td3-expert.zip"  # convention for SB3 policies
    assert agent_path("Hopper-v4", "td3-expert") == zoo / "td3-expert" / "td3-expert.zip"
    with pytest.raises(ZooError, match=r"No 'sac' agent for Hopper-v4: .*sb3/sac.zip does not exist .*available: dt"):
        agent_path("Hopper-v4", "sac")
    with pytest.raises(ZooError, match="No default agent for Ant-v4 in the zoo"):
        agent_path("Ant-v4")


def test_unknown_names_and_broken_presets(zoo):
    with pytest.raises(ZooError, match="Unknown agent 'dqn'"):
        get_agent("Hopper-v4", "dqn")
    (zoo / "manifest.json").write_text("{not json")
    with pytest.raises(ZooError, match="not valid JSON"):
        load_manifest("Hopper-v4")



def test_a_zoo_folder_with_the_old_preset_json_still_reads(zoo):
    """A user's own zoo folder of the layout before issue 31 has preset.json, no manifest.json: read from that;
    where both exist, manifest.json is the one read."""
    (zoo / "manifest.json").rename(zoo / "preset.json")
    assert "Hopper-v4" in zoo_env_ids()
    manifest = load_manifest("Hopper-v4")
    assert manifest.default_agent == "dt" and manifest.eval == {"episodes": 5}
    assert agent_path("Hopper-v4") == zoo / "dt"
    with pytest.raises(ZooError, match=r"preset\.json lists it as sb3/sac\.zip|sb3/sac.zip does not exist"):
        agent_path("Hopper-v4", "sac")
    (zoo / "manifest.json").write_text(json.dumps({"env_id": "Hopper-v4", "default_agent": "td3"}))
    assert load_manifest("Hopper-v4").default_agent == "td3"
    (zoo / "preset.json").unlink()
    assert moved_path(zoo / "preset.json") == zoo / "manifest.json"  # the old name points to the new file

def test_load_agent_dispatches_by_kind(tmp_path):
    (tmp_path / "x.zip").write_bytes(b"PK")
    assert agent_kind(tmp_path / "x.zip") == "sb3"
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / "agent.json").write_text(json.dumps({"kind": "mystery"}))
    with pytest.raises(ArtifactError, match="agent kind 'mystery'.*known: bc, dt, odt, sb3, tt"):
        load_agent(tmp_path / "odd")
    (tmp_path / "run" / "agent").mkdir(parents=True)  # a seqpolicy-train run folder
    (tmp_path / "run" / "agent" / "agent.json").write_text(json.dumps({"kind": "tt"}))
    assert agent_kind(tmp_path / "run") == "tt"
    with pytest.raises(ArtifactError, match="agent.json is missing"):
        load_agent(tmp_path)
    with pytest.raises(ArtifactError, match="does not exist"):
        load_agent(tmp_path / "nowhere")


@pytest.mark.parametrize("env_id", ["HalfCheetah-v4", "Walker2d-v4"])
def test_an_env_whose_agents_are_not_built_says_what_is_missing_and_how_to_build_it(env_id, tmp_path, monkeypatch,
                                                                                    capsys):
    """The shipped preset alone (as on a fresh clone before any build): the default agent, an SB3 policy and
    seqpolicy-eval name what is missing and the commands that make it; --agent random works."""
    from seqpolicy.agents.base import RandomAgent
    from seqpolicy.cli import eval as eval_cli

    monkeypatch.setenv("SEQPOLICY_ENVS", str(tmp_path))
    monkeypatch.chdir(tmp_path)  # MuJoCo writes MUJOCO_LOG.TXT (a deprecation note on HalfCheetah's XML) here
    (tmp_path / env_id).mkdir()
    shutil.copy(ENVS / env_id / "manifest.json", tmp_path / env_id)
    assert load_manifest(env_id).training["dt"]["command"].startswith("seqpolicy-train dt --dataset ")
    with pytest.raises(ZooError, match=rf"The zoo's 'dt' agent for {env_id} is not built yet: .* lists it as "
                                       rf"dt-medium, which does not exist \(built so far: none\)\. .*"
                                       rf"{re.escape(f'python envs/make_datasets.py --env {env_id}')}.*"
                                       rf"{re.escape(f'python envs/make_agents.py --env {env_id} train dt')}"):
        get_agent(env_id)
    with pytest.raises(ZooError, match=rf"'td3' agent for {env_id} is not built yet: .*td3-expert/td3-expert\.zip.*"
                                       rf"{re.escape(f'python envs/make_datasets.py --env {env_id}`')}"):
        get_agent(env_id, "td3")
    (tmp_path / env_id / "td3-expert").mkdir()
    (tmp_path / env_id / "td3-expert" / "td3-expert.zip").write_bytes(b"PK")
    with pytest.raises(ZooError, match=r"\(built so far: td3\)"):
        get_agent(env_id, "bc")
    agent = get_agent(env_id, "random", seed=0)
    assert isinstance(agent, RandomAgent) and agent.act(agent.observation_space.sample()).shape == (6,)
    capsys.readouterr()
    assert eval_cli.main(["--env", env_id, "--no-video"]) == 2
    err = capsys.readouterr().err
    assert "not built yet" in err and "--agent random" in err and len(err.strip().splitlines()) == 1, err


def test_cards_are_read_in_the_agent_folder_and_where_they_were_before(zoo):
    """An agent's card is its folder's card.json (an SB3 policy's, beside its zip); a zoo of the layout before,
    with <artifact>.json beside the folder, keeps working."""
    from seqpolicy.zoo import agent_card, card_path, selected_by

    assert card_path(zoo / "dt") == zoo / "dt" / "card.json"
    assert card_path(zoo / "td3-expert" / "td3-expert.zip") == zoo / "td3-expert" / "card.json"
    assert agent_card("Hopper-v4", "dt") is None and selected_by("Hopper-v4", "dt") is None
    (zoo / "dt.json").write_text(json.dumps({"selected": "before"}))  # the layout before
    (zoo / "td3-expert" / "card.json").write_text(json.dumps({"algo": "td3"}))
    assert selected_by("Hopper-v4", "dt") == "before" and agent_card("Hopper-v4", "td3") == {"algo": "td3"}
    (zoo / "dt" / "card.json").write_text(json.dumps({"selected": "now"}))
    assert selected_by("Hopper-v4", "dt") == "now"
    (zoo / "dt" / "card.json").write_text("[1, 2]")
    with pytest.raises(ZooError, match="card.json is not a card: expected a JSON object"):
        agent_card("Hopper-v4", "dt")


@pytest.mark.parametrize(("old", "new"), [
    ("td3-expert.zip", "td3-expert/td3-expert.zip"),
    ("dt.json", "dt/card.json"),
    ("td3-expert.json", "td3-expert/card.json"),
    ("dt-calibration.png", "research/calibration/dt.png"),
    ("results/results/dt.json", "results/dt.json"),
    ("tt-curve/curve.md", "research/tt-curve/curve.md"),
    ("odt-curve", "research/odt-curve"),
    ("seeds/dt/1.json", "seeds/dt/1/card.json"),
])
def test_paths_of_the_layout_before_name_where_they_are_now(zoo, old, new):
    from seqpolicy.zoo import moved_path, raise_if_moved

    for path in ("dt/card.json", "research/calibration/dt.png", "results/dt.json", "research/tt-curve/curve.md",
                 "research/odt-curve/README.md", "seeds/dt/1/card.json", "td3-expert/card.json"):
        (zoo / path).parent.mkdir(parents=True, exist_ok=True)
        (zoo / path).write_text("{}")
    assert moved_path(zoo / old) == zoo / new
    with pytest.raises(ZooError, match=rf"{re.escape(str(zoo / old))} does not exist: the zoo's env folders were "
                                       rf"reorganised .*; it is now {re.escape(str(zoo / new))}\."):
        raise_if_moved(zoo / old)
    raise_if_moved(zoo / new)  # there: nothing to say
    assert moved_path(zoo / new) is None and moved_path(zoo / "nothing.json") is None


def test_old_paths_fail_with_the_new_one(zoo):
    """A research file named by a hash before is named by what it holds now: the folder is named; a shard of
    make_agents.py evaluate is not in the zoo's folders any more; get_agent names an SB3 zip's new place."""
    from seqpolicy.zoo import moved_path, raise_if_moved

    (zoo / "research" / "tt-curve" / "results").mkdir(parents=True)
    hashed = zoo / "tt-curve" / "results" / "0246f267584d1547.json"
    assert moved_path(hashed) == zoo / "research" / "tt-curve" / "results"
    with pytest.raises(ZooError, match=r"it is now in .*research/tt-curve/results/, renamed after what it holds"):
        raise_if_moved(hashed)
    with pytest.raises(ZooError, match=r"keeps its shards out of the zoo's folders now .*results/<agent>\.json"):
        raise_if_moved(zoo / "results" / "shards" / "dt-0-49.json")
    with pytest.raises(ZooError, match=r"td3-expert\.zip does not exist: .*it is now .*td3-expert/td3-expert\.zip"):
        get_agent("Hopper-v4", str(zoo / "td3-expert.zip"))
