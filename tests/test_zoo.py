"""The zoo's lookups and load_agent's dispatch by artifact kind."""

from __future__ import annotations

import json

import pytest

from seqpolicy.agents.loading import agent_kind, load_agent
from seqpolicy.common.artifact import ArtifactError
from seqpolicy.zoo import ZooError, agent_path, get_agent, load_preset, search_paths


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
    with pytest.raises(ZooError, match="No default agent for Walker2d-v4 in the zoo"):
        agent_path("Walker2d-v4")


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
    with pytest.raises(ArtifactError, match="agent kind 'mystery'.*known: bc, dt, sb3, tt"):
        load_agent(tmp_path / "odd")
    (tmp_path / "run" / "agent").mkdir(parents=True)  # a seqpolicy-train run folder
    (tmp_path / "run" / "agent" / "agent.json").write_text(json.dumps({"kind": "tt"}))
    assert agent_kind(tmp_path / "run") == "tt"
    with pytest.raises(ArtifactError, match="agent.json is missing"):
        load_agent(tmp_path)
    with pytest.raises(ArtifactError, match="does not exist"):
        load_agent(tmp_path / "nowhere")
