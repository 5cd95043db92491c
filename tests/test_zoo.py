"""The zoo's lookups and load_agent's dispatch by artifact kind."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from seqpolicy.agents.loading import agent_kind, load_agent
from seqpolicy.common.artifact import ArtifactError
from seqpolicy.zoo import ZooError, agent_path, get_agent, load_preset, search_paths

ENVS = Path(__file__).resolve().parent.parent / "envs"


@pytest.fixture
def zoo(tmp_path, monkeypatch):
    monkeypatch.setenv("SEQPOLICY_ENVS", str(tmp_path))
    folder = tmp_path / "Hopper-v4"
    (folder / "dt").mkdir(parents=True)
    (folder / "dt" / "agent.json").write_text(json.dumps({"format": "seqpolicy-agent", "kind": "dt"}))
    (folder / "td3-expert.zip").write_bytes(b"PK")
    (folder / "preset.json").write_text(json.dumps({"env_id": "Hopper-v4", "default_agent": "dt",
                                                    "agents": {"sac": "sb3/sac.zip"}, "eval": {"episodes": 5}}))
    return folder


def test_preset_and_agent_paths(zoo):
    assert search_paths()[0] == zoo.parent
    preset = load_preset("Hopper-v4")
    assert preset.folder == zoo and preset.default_agent == "dt" and preset.eval == {"episodes": 5}
    assert agent_path("Hopper-v4") == zoo / "dt"
    assert agent_path("Hopper-v4", "td3") == zoo / "td3-expert.zip"  # convention for SB3 policies
    with pytest.raises(ZooError, match=r"No 'sac' agent for Hopper-v4: .*sb3/sac.zip does not exist .*available: dt"):
        agent_path("Hopper-v4", "sac")
    with pytest.raises(ZooError, match="No default agent for Ant-v4 in the zoo"):
        agent_path("Ant-v4")


def test_unknown_names_and_broken_presets(zoo):
    with pytest.raises(ZooError, match="Unknown agent 'dqn'"):
        get_agent("Hopper-v4", "dqn")
    (zoo / "preset.json").write_text("{not json")
    with pytest.raises(ZooError, match="not valid JSON"):
        load_preset("Hopper-v4")


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
    shutil.copy(ENVS / env_id / "preset.json", tmp_path / env_id)
    assert load_preset(env_id).training["dt"]["command"].startswith("seqpolicy-train dt --dataset ")
    with pytest.raises(ZooError, match=rf"The zoo's 'dt' agent for {env_id} is not built yet: .* lists it as "
                                       rf"dt-medium, which does not exist \(built so far: none\)\. .*"
                                       rf"{re.escape(f'python envs/make_datasets.py --env {env_id}')}.*"
                                       rf"{re.escape(f'python envs/make_agents.py --env {env_id} train dt')}"):
        get_agent(env_id)
    with pytest.raises(ZooError, match=rf"'td3' agent for {env_id} is not built yet: .*td3-expert\.zip.*"
                                       rf"{re.escape(f'python envs/make_datasets.py --env {env_id}`')}"):
        get_agent(env_id, "td3")
    (tmp_path / env_id / "td3-expert.zip").write_bytes(b"PK")
    with pytest.raises(ZooError, match=r"\(built so far: td3\)"):
        get_agent(env_id, "bc")
    agent = get_agent(env_id, "random", seed=0)
    assert isinstance(agent, RandomAgent) and agent.act(agent.observation_space.sample()).shape == (6,)
    capsys.readouterr()
    assert eval_cli.main(["--env", env_id, "--no-video"]) == 2
    err = capsys.readouterr().err
    assert "not built yet" in err and "--agent random" in err and len(err.strip().splitlines()) == 1, err
