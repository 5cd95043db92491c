"""Agent artifacts: a DT or TT folder written by agent.save() is also a transformers folder with the same weights;
the older layout (seqpolicy's module names, format 1) still loads; edits and mismatches are caught."""

from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np
import pytest
import torch
from conftest import make_dt_agent, rollout

from seqpolicy.agents.dt import DecisionTransformerAgent
from seqpolicy.agents.tt import TrajectoryTransformerAgent
from seqpolicy.common.artifact import ArtifactError, save_artifact

transformers = pytest.importorskip("transformers", reason="needs the test extra: pip install -e .[test]")

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: small models on a shared 2-core machine


def _hf_classes(kind: str):
    if kind == "dt":
        return transformers.DecisionTransformerModel
    tt = pytest.importorskip("transformers.models.deprecated.trajectory_transformer",
                             reason="the TT needs transformers>=4.40,<5 (pip install 'seqpolicy[test]')")
    return tt.TrajectoryTransformerModel


def _agent(kind: str, env):
    if kind == "dt":
        return make_dt_agent(env)
    from test_tt_agent import make_tt_agent

    return make_tt_agent(env)


def _old_layout(agent, folder):
    """What agent.save() wrote before format 2: seqpolicy's module names, no config.json."""
    return save_artifact(folder, agent.kind, agent.model.state_dict(), agent._meta())


@pytest.mark.parametrize("kind", ["dt", "tt"])
def test_saved_agent_folder_loads_in_transformers_with_the_same_weights(kind, toy_env, tmp_path):
    agent = _agent(kind, toy_env)
    folder = agent.save(tmp_path / "agent")
    assert sorted(p.name for p in folder.iterdir()) == ["agent.json", "config.json", "model.safetensors"]
    hf, info = _hf_classes(kind).from_pretrained(folder, output_loading_info=True)
    buffers = (".attn.bias", ".attn.masked_bias", ".attn.mask")  # causal masks transformers rebuilds itself
    assert [k for k in info["missing_keys"] if not k.endswith(buffers)] == []
    assert info["unexpected_keys"] == [] and info["mismatched_keys"] == []
    theirs = hf.state_dict()
    ours = agent.model.hf_state_dict()
    assert set(ours) <= set(theirs)
    for name, tensor in ours.items():
        torch.testing.assert_close(theirs[name], tensor, rtol=0, atol=0, msg=name)
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == ("decision_transformer" if kind == "dt" else "trajectory_transformer")
    meta = json.loads((folder / "agent.json").read_text())
    assert meta["format_version"] == 2 and meta["weights_layout"] == "transformers"
    back = type(agent).load(folder)
    np.testing.assert_array_equal(rollout(agent, toy_env, seed=4), rollout(back, toy_env, seed=4))


def test_dt_folder_keeps_what_transformers_does_not_store(toy_env, tmp_path):
    """agent.json beside config.json: statistics, return scale, context length, targets, spaces."""
    agent = make_dt_agent(toy_env, context_length=3)
    meta = json.loads((agent.save(tmp_path / "agent") / "agent.json").read_text())
    assert meta["state_mean"] == pytest.approx(agent.state_mean.tolist())
    assert meta["state_std"] == pytest.approx(agent.state_std.tolist())
    assert (meta["return_scale"], meta["context_length"], meta["target_return"]) == (10.0, 3, 30.0)
    assert meta["observation_space"]["shape"] == [6] and meta["action_space"]["shape"] == [2]
    # and the HF-only route (DecisionTransformerAgent.from_pretrained) reads the same folder's weights
    hf_only = DecisionTransformerAgent.from_pretrained(tmp_path / "agent", state_mean=agent.state_mean,
                                                       state_std=agent.state_std, target_return=30.0,
                                                       return_scale=10.0, context_length=3,
                                                       observation_space=toy_env.observation_space,
                                                       action_space=toy_env.action_space)
    np.testing.assert_array_equal(rollout(agent, toy_env, seed=1), rollout(hf_only, toy_env, seed=1))


@pytest.mark.parametrize("kind", ["dt", "tt"])
def test_old_layout_still_loads(kind, toy_env, tmp_path):
    agent = _agent(kind, toy_env)
    folder = _old_layout(agent, tmp_path / "old")
    assert json.loads((folder / "agent.json").read_text())["format_version"] == 1
    assert not (folder / "config.json").exists()
    back = type(agent).load(folder)
    for name, tensor in agent.model.state_dict().items():
        torch.testing.assert_close(back.model.state_dict()[name], tensor, rtol=0, atol=0)
    np.testing.assert_array_equal(rollout(agent, toy_env, seed=2), rollout(back, toy_env, seed=2))


def test_edited_or_missing_config_json_is_caught(toy_env, tmp_path):
    agent = make_dt_agent(toy_env)
    folder = agent.save(tmp_path / "a")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "n_layer": 1}))
    with pytest.raises(ArtifactError, match="config.json does not match the checksum"):
        DecisionTransformerAgent.load(folder)
    (folder / "config.json").unlink()
    with pytest.raises(ArtifactError, match="missing config.json"):
        DecisionTransformerAgent.load(folder)


def test_agent_json_that_disagrees_with_config_json_is_refused(toy_env, tmp_path):
    agent = make_dt_agent(toy_env)
    folder = agent.save(tmp_path / "a")
    doc = json.loads((folder / "agent.json").read_text())
    doc["model_config"] = {**asdict(agent.model.config), "n_layer": 1}
    (folder / "agent.json").write_text(json.dumps(doc))
    with pytest.raises(ArtifactError, match="Cannot build a DT agent.*config.json describes"):
        DecisionTransformerAgent.load(folder)


def test_newer_format_is_explained(toy_env, tmp_path):
    folder = make_dt_agent(toy_env).save(tmp_path / "a")
    doc = json.loads((folder / "agent.json").read_text())
    (folder / "agent.json").write_text(json.dumps({**doc, "format_version": 99}))
    with pytest.raises(ArtifactError, match="written by a newer seqpolicy"):
        DecisionTransformerAgent.load(folder)


def test_tt_folder_keeps_the_discretizer_and_planner(toy_env, tmp_path):
    from test_tt_agent import make_tt_agent

    agent = make_tt_agent(toy_env)
    back = TrajectoryTransformerAgent.load(agent.save(tmp_path / "a"))
    np.testing.assert_array_equal(back.discretizer.thresholds, agent.discretizer.thresholds)
    assert back.planner == agent.planner


def test_a_transformers_folder_without_agent_json_says_what_is_missing(toy_env, tmp_path):
    from seqpolicy.agents.loading import load_agent

    make_dt_agent(toy_env).model.save_pretrained(tmp_path / "hf")
    with pytest.raises(ArtifactError, match=r"transformers folder without seqpolicy's agent.json.*"
                                            r"DecisionTransformerAgent\.from_pretrained"):
        load_agent(tmp_path / "hf")
