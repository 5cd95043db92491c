"""DecisionTransformerAgent: the authors' evaluation loop, timestep clamping and bad input."""

from __future__ import annotations

import json
import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
from conftest import make_dt_agent

from seqpolicy.agents.dt import DecisionTransformerAgent
from seqpolicy.common.artifact import ArtifactError


def _authors_loop_actions(model, env, state_mean, state_std, target, scale, k, seed, steps):
    """The authors' ``evaluate_episode_rtg`` (Chen et al. 2021, gym/evaluation/evaluate_episodes.py; with HF's
    model), written from its description.

    Returns the observations, rewards and actions of one episode.
    """
    obs, _ = env.reset(seed=seed)
    state_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    mean, std = torch.as_tensor(state_mean, dtype=torch.float32), torch.as_tensor(state_std, dtype=torch.float32)
    states = torch.as_tensor(obs, dtype=torch.float32).reshape(1, state_dim)
    actions = torch.zeros((0, act_dim))
    rtg = torch.tensor([[target / scale]], dtype=torch.float32)
    timesteps = torch.zeros((1, 1), dtype=torch.long)
    out_obs, out_rew, out_act = [obs], [], []
    for t in range(steps):
        actions = torch.cat([actions, torch.zeros((1, act_dim))])  # placeholder for the current action
        s = ((states - mean) / std)[-k:][None]
        a, r, ts = actions[-k:][None], rtg[0, -k:].reshape(1, -1, 1), timesteps[:, -k:]
        n = s.shape[1]
        mask = torch.cat([torch.zeros(k - n), torch.ones(n)]).long()[None]
        s = torch.cat([torch.zeros((1, k - n, state_dim)), s], dim=1)
        a = torch.cat([torch.zeros((1, k - n, act_dim)), a], dim=1)
        r = torch.cat([torch.zeros((1, k - n, 1)), r], dim=1)
        ts = torch.cat([torch.zeros((1, k - n), dtype=torch.long), ts], dim=1)
        with torch.no_grad():
            _, action_preds, _ = model(states=s, actions=a, returns_to_go=r, timesteps=ts, attention_mask=mask,
                                       return_dict=False)
        action = action_preds[0, -1]
        actions[-1] = action
        out_act.append(action.numpy())
        obs, reward, term, trunc, _ = env.step(action.numpy())
        out_rew.append(reward)
        if term or trunc:
            break
        out_obs.append(obs)
        states = torch.cat([states, torch.as_tensor(obs, dtype=torch.float32).reshape(1, state_dim)])
        rtg = torch.cat([rtg, (rtg[0, -1] - reward / scale).reshape(1, 1)], dim=1)
        timesteps = torch.cat([timesteps, torch.full((1, 1), t + 1, dtype=torch.long)], dim=1)
    return out_obs, out_rew, np.array(out_act)


def test_from_pretrained_matches_authors_eval_loop_with_transformers(tmp_path):
    transformers = pytest.importorskip("transformers", reason="needs the test extra: pip install -e .[test]")
    env = gym.make("Hopper-v4")
    cfg = transformers.DecisionTransformerConfig(state_dim=11, act_dim=3, hidden_size=64, n_layer=3, n_head=1,
                                                 max_ep_len=1000)
    torch.manual_seed(0)
    hf = transformers.DecisionTransformerModel(cfg).eval()
    with torch.no_grad():
        for p in hf.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    hf.save_pretrained(tmp_path / "hf")
    rng = np.random.default_rng(0)
    mean, std = rng.normal(size=11) * 0.1, rng.uniform(0.5, 2.0, size=11)
    k, target, scale = 20, 3600.0, 1000.0
    obs_seq, rew_seq, ref_actions = _authors_loop_actions(hf, env, mean, std, target, scale, k, seed=0, steps=60)
    assert len(ref_actions) > k, "episode too short to exercise the sliding window"

    agent = DecisionTransformerAgent.from_pretrained(tmp_path / "hf", state_mean=mean, state_std=std,
                                                     target_return=target, return_scale=scale, context_length=k)
    agent.reset()
    reward = None
    for t, obs in enumerate(obs_seq):
        action = agent.act(obs, reward)
        np.testing.assert_allclose(action, ref_actions[t], atol=1e-5, err_msg=f"step {t}")
        reward = rew_seq[t]


def test_timestep_past_max_ep_len_clamps_with_one_warning(toy_env):
    agent = make_dt_agent(toy_env, max_ep_len=8)
    obs = toy_env.observation_space.sample()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        agent.act(obs)
        for _ in range(20):
            action = agent.act(obs, 0.5)
    assert np.isfinite(action).all()
    msgs = [w for w in caught if "max_ep_len" in str(w.message)]
    assert len(msgs) == 1


@pytest.mark.parametrize("bad, match", [
    (np.zeros(5, dtype=np.float32), r"obs has shape \(5,\), expected \(6,\)"),
    (np.zeros((2, 3, 6), dtype=np.float32), r"expected \(6,\) for one env or \(n, 6\)"),
    (np.array(["a"] * 6), "obs must be a numeric array"),
    (np.array([0, 0, np.nan, 0, 0, 0], dtype=np.float32), "obs contains NaN or inf"),
    (np.array([0, 0, 0, np.inf, 0, 0], dtype=np.float32), "obs contains NaN or inf"),
])
def test_bad_obs(dt_agent, bad, match):
    with pytest.raises((ValueError, TypeError), match=match):
        dt_agent.act(bad)


def test_bad_reward(dt_agent, toy_env):
    obs = toy_env.observation_space.sample()
    dt_agent.act(obs)
    with pytest.raises(ValueError, match="reward is missing"):
        dt_agent.act(obs)
    with pytest.raises(ValueError, match="reward contains NaN or inf"):
        dt_agent.act(obs, float("nan"))
    with pytest.raises(ValueError, match="reward has shape"):
        dt_agent.act(obs, np.zeros(3))


def test_switching_single_to_batched_without_reset(dt_agent, toy_env):
    dt_agent.act(toy_env.observation_space.sample())
    with pytest.raises(ValueError, match="Call agent.reset"):
        dt_agent.act(np.zeros((4, 6), dtype=np.float32), np.zeros(4))


def test_checkpoint_for_another_observation_size(tmp_path, toy_env):
    agent = make_dt_agent(toy_env)
    agent.save(tmp_path / "a")
    loaded = DecisionTransformerAgent.load(tmp_path / "a")
    hopper = gym.make("Hopper-v4")
    with pytest.raises(ValueError, match="observation space .* does not match"):
        loaded.check_env(hopper)
    with pytest.raises(ValueError, match=r"expected \(6,\).*another env"):
        loaded.act(hopper.reset(seed=0)[0])
    with pytest.raises(ValueError, match="observations of size 6 but the observation space has size 11"):
        DecisionTransformerAgent(agent.model, hopper.observation_space, hopper.action_space,
                                 state_mean=np.zeros(11), state_std=np.ones(11), target_return=1.0)


def test_missing_or_corrupt_artifact(tmp_path, dt_agent):
    with pytest.raises(ArtifactError, match="folder does not exist"):
        DecisionTransformerAgent.load(tmp_path / "nothing")
    folder = dt_agent.save(tmp_path / "a")
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])  # truncated
    with pytest.raises(ArtifactError, match="does not match the checksum"):
        DecisionTransformerAgent.load(folder)
    folder = dt_agent.save(tmp_path / "b")
    (folder / "agent.json").write_text("{not json")
    with pytest.raises(ArtifactError, match="not valid JSON"):
        DecisionTransformerAgent.load(folder)
    folder = dt_agent.save(tmp_path / "c")
    (folder / "model.safetensors").unlink()
    with pytest.raises(ArtifactError, match="missing model.safetensors"):
        DecisionTransformerAgent.load(folder)
    folder = dt_agent.save(tmp_path / "d")
    doc = json.loads((folder / "agent.json").read_text())
    doc["kind"] = "tt"
    (folder / "agent.json").write_text(json.dumps(doc))
    with pytest.raises(ArtifactError, match="holds a 'tt' agent"):
        DecisionTransformerAgent.load(folder)


def test_artifact_is_self_describing(tmp_path, dt_agent):
    doc = json.loads((dt_agent.save(tmp_path / "a") / "agent.json").read_text())
    for key in ("model_config", "context_length", "state_mean", "state_std", "return_scale", "target_return",
                "target_returns", "max_ep_len", "env_id", "observation_space", "action_space", "dataset_id",
                "versions"):
        assert key in doc, key
    assert doc["versions"]["torch"] == torch.__version__


def test_state_stats_change_only_through_set_state_stats(dt_agent, toy_env):
    """The statistics act() uses are the ones the agent reports: no silent edits of a stale copy."""
    obs, _ = toy_env.reset(seed=0)
    dt_agent.reset()
    before = dt_agent.act(obs)
    with pytest.raises(AttributeError):
        dt_agent.state_mean = np.zeros(6)
    with pytest.raises(ValueError, match="read-only"):
        dt_agent.state_mean[0] = 5.0
    mean = dt_agent.state_mean + 3.0
    dt_agent.set_state_stats(mean, dt_agent.state_std)
    assert mean.flags.writeable and np.array_equal(dt_agent.state_mean, mean)
    dt_agent.reset()
    assert not np.allclose(dt_agent.act(obs), before)
    with pytest.raises(ValueError, match="must have shape"):
        dt_agent.set_state_stats(np.zeros(5), np.ones(5))
