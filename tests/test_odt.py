"""The Online Decision Transformer: the stochastic DT (maths, agent, artifact), offline training with
``seqpolicy-train dt --stochastic true``, and online fine-tuning with ``seqpolicy-train odt`` (replay buffer order and
relabelling, rollouts, exact resume after kill -9 or a signal, bad input, and a learning test on PointReach)."""

from __future__ import annotations

import csv
import json
import math
import os
import re
import signal
import subprocess
import sys
import time

import gymnasium as gym
import numpy as np
import pytest
import torch
from conftest import TOY_ID, rollout

import seqpolicy
from seqpolicy.agents.odt import OnlineDTAgent
from seqpolicy.common.artifact import ArtifactError
from seqpolicy.models import DTConfig
from seqpolicy.models.online_dt import (
    StochasticDecisionTransformer,
    squashed_entropy,
    squashed_log_prob,
    temperature_loss,
)
from seqpolicy.training import odt
from seqpolicy.training.checkpoint import find_checkpoint
from seqpolicy.training.dt import PRESETS as DT_PRESETS
from seqpolicy.training.dt import returns_to_go

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: small models on a shared 2-core machine

# a tiny ODT run (pretraining and online) that takes a few seconds
TINY = dict(context_length=4, acting_context_length=None, hidden_size=16, n_layer=1, n_head=1, batch_size=8,
            warmup_steps=3, learning_rate=1e-3, return_scale=50.0, max_steps=6, eval_every=0, checkpoint_every=3,
            log_every=2, online_steps=300, online_target=50.0, buffer_size=20, episodes_per_iteration=2,
            updates_per_iteration=3, online_eval_every=0, online_checkpoint_every=1, device="cpu",
            precision="fp32", seed=3, likelihood_beta=0.5)
TINY_CLI = ["--context-length", "4", "--acting-context-length", "none", "--hidden-size", "16", "--n-layer", "1",
            "--n-head", "1", "--batch-size", "8", "--warmup-steps", "3", "--learning-rate", "1e-3",
            "--return-scale", "50", "--steps", "6", "--eval-every", "0", "--checkpoint-every", "3", "--log-every", "2",
            "--online-target", "50", "--buffer-size", "20", "--episodes-per-iteration", "2",
            "--updates-per-iteration", "3", "--online-eval-every", "0", "--online-checkpoint-every", "1",
            "--device", "cpu", "--precision", "fp32", "--seed", "3", "--likelihood-beta", "0.5"]


def make_odt_agent(env: gym.Env, seed: int = 0, sample: bool = False, env_id: str | None = TOY_ID,
                   noise_scale: float = 1.0) -> OnlineDTAgent:
    """An untrained stochastic DT agent with random (non-trivial) weights for env's spaces."""
    torch.manual_seed(seed)
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    model = StochasticDecisionTransformer(DTConfig(state_dim=obs_dim, act_dim=act_dim, hidden_size=32, n_layer=2,
                                                   n_head=2, max_ep_len=64))
    rng = np.random.default_rng(seed)
    return OnlineDTAgent(model, env.observation_space, env.action_space, state_mean=rng.normal(size=obs_dim),
                         state_std=rng.uniform(0.5, 2, obs_dim), target_return=30.0, return_scale=10.0,
                         context_length=5, env_id=env_id, sample=sample, noise_scale=noise_scale)


def episode(rewards: list[float], obs_dim: int = 6, act_dim: int = 2, value: float = 0.0) -> seqpolicy.Episode:
    n = len(rewards)
    return seqpolicy.Episode(np.full((n, obs_dim), value), np.zeros((n, act_dim)), np.array(rewards))


def weights(agent) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in agent.model.state_dict().items()}


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def log_rows(run) -> list[dict[str, str]]:
    """log.csv's rows, without the timing columns (steps per second differ between two runs of the same steps)."""
    with open(run / "log.csv") as f:
        return [{k: v for k, v in row.items() if not k.endswith("per_s")} for row in csv.DictReader(f)]


# -- the stochastic policy's maths ---------------------------------------------------------------------------

def test_log_prob_is_the_tanh_squashed_gaussian_density():
    """Against torch.distributions' own tanh-transformed Normal (fails on a missing or wrong Jacobian)."""
    from torch.distributions import Independent, Normal, TransformedDistribution
    from torch.distributions.transforms import TanhTransform

    g = torch.Generator().manual_seed(0)
    mean, log_std = torch.randn(5, 3, generator=g), torch.rand(5, 3, generator=g) - 1.5
    actions = torch.rand(5, 3, generator=g) * 1.8 - 0.9
    reference = TransformedDistribution(Independent(Normal(mean, log_std.exp()), 1), [TanhTransform()])
    torch.testing.assert_close(squashed_log_prob(mean, log_std, actions), reference.log_prob(actions))
    # beta-NLL weights each dimension by std^(2 beta): the same terms, scaled
    weighted = squashed_log_prob(mean, log_std, actions, beta=0.5)
    per_dim = [squashed_log_prob(mean[:, i:i + 1], log_std[:, i:i + 1], actions[:, i:i + 1]) for i in range(3)]
    torch.testing.assert_close(weighted, sum(p * log_std[:, i].exp() for i, p in enumerate(per_dim)))
    assert torch.isfinite(squashed_log_prob(mean, log_std, torch.ones(5, 3))).all()  # actions at the bound


def test_action_eps_moves_a_bound_action_to_where_the_clamp_puts_it(toy_data, tmp_path, monkeypatch):
    """An action at the bound is scored where +-(1 - action_eps) is: the default clamp's 7.25 (atanh of 1 - 1e-6)
    or 0.01's 2.65; actions inside the clamp are unchanged. The trainer passes its config's value through."""
    mean, log_std = torch.zeros(1, 1), torch.zeros(1, 1)
    for eps in (1e-6, 0.01):
        inside = torch.full((1, 1), 1 - eps)
        torch.testing.assert_close(squashed_log_prob(mean, log_std, torch.ones(1, 1), action_eps=eps),
                                   squashed_log_prob(mean, log_std, inside, action_eps=eps))
    at_bound = [squashed_log_prob(torch.full((1, 1), m), log_std, torch.ones(1, 1), action_eps=0.01) for m in
                (2.0, 2.6466, 4.0)]
    assert at_bound[1] > at_bound[0] and at_bound[1] > at_bound[2]  # the Gaussian part peaks at atanh(0.99)
    middle = torch.full((1, 1), 0.5)
    torch.testing.assert_close(squashed_log_prob(mean, log_std, middle, action_eps=0.01),
                               squashed_log_prob(mean, log_std, middle))
    with pytest.raises(ValueError, match="action_eps must be in"):
        odt.ODTTrainConfig(action_eps=0.0)

    seen = set()
    real = seqpolicy.training.dt.squashed_log_prob

    def spy(mean, log_std, actions, beta, action_eps):
        seen.add(action_eps)
        return real(mean, log_std, actions, beta, action_eps)

    monkeypatch.setattr(seqpolicy.training.dt, "squashed_log_prob", spy)
    odt.train_odt(toy_data, env_id=TOY_ID, run_dir=tmp_path / "run", progress=False,
                  **dict(TINY, online_steps=50, action_eps=0.02))
    assert seen == {0.02}  # pretraining's and the online updates' likelihoods both

def test_entropy_is_minus_the_log_density_of_a_reparameterised_sample():
    from torch.distributions import Normal

    mean, log_std = torch.tensor([[0.3, -1.0]], requires_grad=True), torch.tensor([[-0.5, 0.2]], requires_grad=True)
    torch.manual_seed(7)
    estimate = squashed_entropy(mean, log_std)
    torch.manual_seed(7)
    u = mean + log_std.exp() * torch.randn_like(mean)
    reference = -(Normal(mean, log_std.exp()).log_prob(u) - torch.log(1 - torch.tanh(u) ** 2)).sum(-1)
    torch.testing.assert_close(estimate, reference)
    estimate.sum().backward()
    assert mean.grad is not None and log_std.grad is not None and (log_std.grad != 0).all()  # reparameterised


@pytest.mark.parametrize("target, direction", [(5.0, 1), (-20.0, -1)], ids=["entropy-below-target", "above"])
def test_the_temperature_rises_while_entropy_is_below_its_target_and_falls_above(target, direction, toy_data):
    """The sign of the temperature update: its own loss alone (one Adam step), and inside a training step
    (a target far above the policy's entropy raises the temperature, far below lowers it). Fails with the loss's
    sign flipped."""
    log_t = torch.nn.Parameter(torch.tensor([math.log(0.1)]))
    opt = torch.optim.Adam([log_t], lr=0.01)
    temperature_loss(log_t, torch.tensor(-2.0), target).backward()
    opt.step()
    assert direction * (log_t.item() - math.log(0.1)) > 0

    agent = seqpolicy.train_dt(toy_data, env_id=TOY_ID, stochastic=True, target_entropy=target, max_steps=3,
                               **{k: TINY[k] for k in ("context_length", "hidden_size", "n_layer", "batch_size",
                                                       "warmup_steps", "learning_rate", "return_scale", "device")},
                               eval_every=0, progress=False)
    assert direction * (agent.model.temperature.item() - 0.1) > 0


# -- the agent -----------------------------------------------------------------------------------------------

def test_acts_with_the_mean_unless_asked_to_sample_and_samples_repeat_with_the_seed(toy_env):
    agent = make_odt_agent(toy_env)
    mean_actions = rollout(agent, toy_env, seed=0)
    np.testing.assert_array_equal(mean_actions, rollout(agent, toy_env, seed=0))
    sampler = make_odt_agent(toy_env, sample=True)
    sampler.reset(seed=5)
    first = rollout(sampler, toy_env, seed=0)
    sampler.reset(seed=5)
    np.testing.assert_array_equal(first, rollout(sampler, toy_env, seed=0))
    sampler.reset(seed=6)
    assert not np.allclose(first, rollout(sampler, toy_env, seed=0))
    assert not np.allclose(first, mean_actions)
    low, high = toy_env.action_space.low, toy_env.action_space.high
    assert first.dtype == np.float32 and (first >= low).all() and (first <= high).all()
    # predict() (SB3's protocol) and a vector of envs work as for the DT; sampled in a batch of 3
    actions, _ = sampler.predict(np.stack([toy_env.observation_space.sample()] * 3),
                                 episode_start=np.ones(3, dtype=bool))
    assert actions.shape == (3, 2) and len({tuple(a) for a in actions}) == 3


def test_noise_scale_explores_between_the_mean_and_the_policys_own_samples(toy_env):
    mean_actions = rollout(make_odt_agent(toy_env), toy_env, seed=0)
    spread = {}
    for scale in (0.0, 0.3, 1.0):
        sampler = make_odt_agent(toy_env, sample=True, noise_scale=scale)
        sampler.reset(seed=5)
        spread[scale] = float(np.abs(rollout(sampler, toy_env, seed=0) - mean_actions).mean())
    assert spread[0.0] < 1e-6 < spread[0.3] < spread[1.0]  # 0 acts with the mean; 1 samples the policy itself
    with pytest.raises(ValueError, match="noise_scale must be >= 0"):
        make_odt_agent(toy_env, sample=True, noise_scale=-1.0)
    with pytest.raises(ValueError, match="exploration_noise_scale must be > 0"):
        odt.ODTTrainConfig(exploration_noise_scale=0.0)


def test_saved_folder_loads_as_a_stochastic_agent_and_as_a_transformers_dt_with_the_mean_action(toy_env, tmp_path):
    agent = make_odt_agent(toy_env)
    agent.save(tmp_path / "agent")
    loaded = seqpolicy.load_agent(tmp_path / "agent", device="cpu")
    assert isinstance(loaded, OnlineDTAgent) and not loaded.sample and same(weights(agent), weights(loaded))
    assert seqpolicy.load_agent(tmp_path / "agent", device="cpu", sample=True).sample
    np.testing.assert_array_equal(rollout(agent, toy_env, seed=3), rollout(loaded, toy_env, seed=3))
    with pytest.raises(ArtifactError, match="holds a 'odt' agent, not a 'dt' one"):
        seqpolicy.DecisionTransformerAgent.load(tmp_path / "agent")

    transformers = pytest.importorskip("transformers", reason="needs the test extra: pip install -e .[test]")
    import logging

    logging.getLogger("transformers").setLevel(logging.ERROR)  # it names the two tensors it does not use
    hf = transformers.DecisionTransformerModel.from_pretrained(tmp_path / "agent").eval()
    g = torch.Generator().manual_seed(0)
    window = (torch.randn(2, 5, 6, generator=g), torch.rand(2, 5, 2, generator=g) * 2 - 1,
              torch.randn(2, 5, 1, generator=g), torch.randint(0, 64, (2, 5), generator=g))
    with torch.no_grad():
        ours = agent.model.eval()(*window)[1]
        theirs = hf(states=window[0], actions=window[1], returns_to_go=window[2], timesteps=window[3],
                    attention_mask=torch.ones(2, 5, dtype=torch.long), return_dict=False)[1]
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)


# -- replay buffer and rollouts ------------------------------------------------------------------------------

def interrupted_then_resumed(toy_data, run, cfg: dict):
    """The run stopped by SIGINT during its third collection, then resumed: what --resume gives after a kill."""
    interrupted(toy_data, run, cfg)
    return odt.train_odt(toy_data, env_id=TOY_ID, run_dir=run, resume=True, progress=False, **cfg)


def interrupted(toy_data, run, cfg: dict) -> None:
    """The run stopped by SIGINT during its third collection, its checkpoint written."""
    from seqpolicy.training.common import TrainingInterrupted

    collect, calls = odt.collect_episodes, []

    def collect_with_signal(*args, **kw):
        calls.append(1)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGINT)
        return collect(*args, **kw)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(odt, "collect_episodes", collect_with_signal)
        with pytest.raises(TrainingInterrupted):
            odt.train_odt(toy_data, env_id=TOY_ID, run_dir=run, progress=False, **cfg)


def test_buffer_starts_with_the_datasets_best_trajectories_worst_first_then_is_first_in_first_out():
    data = seqpolicy.Trajectories([episode([r]) for r in (5.0, 1.0, 9.0, 3.0, 7.0)], env_id=TOY_ID)
    buffer = odt.TrajectoryBuffer.from_dataset(data, capacity=3)
    assert [ep.episode_return for ep in buffer.episodes] == [5.0, 7.0, 9.0] and buffer.n_online == 0
    buffer.add([episode([100.0]), episode([101.0])])  # the two worst offline trajectories leave first
    assert [ep.episode_return for ep in buffer.episodes] == [9.0, 100.0, 101.0] and buffer.n_online == 2
    buffer.add([episode([102.0]), episode([103.0])])  # then the oldest online one
    assert [ep.episode_return for ep in buffer.episodes] == [101.0, 102.0, 103.0] and buffer.n_online == 3
    small = odt.TrajectoryBuffer.from_dataset(data, capacity=10)  # fewer trajectories than room: all of them
    assert [ep.episode_return for ep in small.episodes] == [1.0, 3.0, 5.0, 7.0, 9.0]


def test_a_buffer_that_keeps_the_dataset_replaces_only_online_trajectories(tmp_path):
    data = seqpolicy.Trajectories([episode([r]) for r in (5.0, 1.0, 9.0, 3.0, 7.0)], env_id=TOY_ID)
    buffer = odt.TrajectoryBuffer.from_dataset(data, capacity=3, online_capacity=2)
    assert [ep.episode_return for ep in buffer.episodes] == [5.0, 7.0, 9.0] and buffer.n_online == 0
    buffer.add([episode([100.0])])
    assert [ep.episode_return for ep in buffer.episodes] == [5.0, 7.0, 9.0, 100.0] and buffer.n_online == 1
    buffer.add([episode([101.0]), episode([102.0])])  # full: the oldest online one leaves, the data stays
    assert [ep.episode_return for ep in buffer.episodes] == [5.0, 7.0, 9.0, 101.0, 102.0] and buffer.n_online == 2
    buffer.add([episode([103.0]), episode([104.0]), episode([105.0])])  # more than the room: the newest two
    assert [ep.episode_return for ep in buffer.episodes] == [5.0, 7.0, 9.0, 104.0, 105.0] and buffer.n_online == 2
    buffer.save(tmp_path)
    back = odt.TrajectoryBuffer.load(tmp_path, 3, buffer.n_online, online_capacity=2)
    assert [ep.episode_return for ep in back.episodes] == [5.0, 7.0, 9.0, 104.0, 105.0] and back.n_online == 2
    back.add([episode([106.0])])
    assert [ep.episode_return for ep in back.episodes] == [5.0, 7.0, 9.0, 105.0, 106.0]
    with pytest.raises(ValueError, match="online_buffer_size must be >= 1"):
        odt.ODTTrainConfig(online_buffer_size=0)


def test_a_run_that_keeps_the_dataset_resumes_exactly(toy_data, tmp_path):
    cfg = dict(TINY, online_buffer_size=3)
    agent = odt.train_odt(toy_data, env_id=TOY_ID, run_dir=tmp_path / "a", progress=False, **cfg)
    state = json.loads((tmp_path / "a" / "checkpoint" / "online.json").read_text())
    assert state["buffer_online"] == 3 and state["buffer_online_capacity"] == 3
    n_data = len(odt.TrajectoryBuffer.from_dataset(toy_data, TINY["buffer_size"]))
    held = odt.TrajectoryBuffer.load(tmp_path / "a" / "checkpoint", state["buffer_capacity"], 3, 3)
    assert len(held) == n_data + 3  # the dataset's trajectories all stayed
    resumed = interrupted_then_resumed(toy_data, tmp_path / "b", cfg)
    assert same(weights(agent), weights(resumed))
    assert log_rows(tmp_path / "b") == log_rows(tmp_path / "a")


def test_online_episodes_are_relabelled_with_the_returns_they_achieved(toy_env, toy_data):
    """Episodes collected asking for a return of 1000 (PointReach gives at most 50) train with the returns-to-go
    they achieved, the suffix sums of their own rewards: that is what the window sampler reads from the buffer."""
    from seqpolicy.common.spaces import ActionScaler
    from seqpolicy.training.dt import WindowSampler

    explorer = make_odt_agent(toy_env).explorer(target_return=1000.0)
    venv = odt.make_rollout_envs(TOY_ID, 2)
    try:
        explorer.reset(seed=0)
        collected = odt.collect_episodes(explorer, venv, [24, 25])  # seeds whose episodes earn rewards
    finally:
        venv.close()
    buffer = odt.TrajectoryBuffer.from_dataset(toy_data, capacity=3)
    buffer.add(collected)
    sampler = WindowSampler(buffer.as_trajectories(toy_data), 4, explorer.state_mean, explorer.state_std,
                            ActionScaler(toy_env.action_space), 10.0, 64, torch.device("cpu"), uniform_episodes=True)
    n_offline = sum(len(ep) for ep in buffer.episodes[:1])
    flat = sampler.rtg.numpy().astype(np.float64) * 10.0
    start = n_offline
    for ep in collected:
        assert ep.episode_return > 10  # rewards to relabel with (a far-off point earns none)
        achieved = np.cumsum(ep.rewards[::-1].astype(np.float64))[::-1]
        np.testing.assert_allclose(flat[start:start + len(ep)], achieved, rtol=1e-5)
        np.testing.assert_allclose(returns_to_go(ep.rewards), achieved)
        assert flat[start] < 60 and flat[start] == pytest.approx(ep.episode_return, rel=1e-5)  # not 1000 - ...
        start += len(ep)


def test_collected_episodes_are_what_each_env_did_with_the_agents_own_actions(toy_env):
    """Each episode replays, step for step, in a fresh env reset with its seed (the observation each action was
    taken in, its reward, how it ended); episodes come back in env order."""
    agent = seqpolicy.RandomAgent(toy_env.observation_space, toy_env.action_space, seed=0)
    venv = odt.make_rollout_envs(TOY_ID, 3)
    try:
        collected = odt.collect_episodes(agent, venv, [1, 2, 3])
        with pytest.raises(ValueError, match="seeds has 2 entries for 3 envs"):
            odt.collect_episodes(agent, venv, [1, 2])
    finally:
        venv.close()
    assert len(collected) == 3
    for seed, ep in zip((1, 2, 3), collected, strict=True):
        obs, _ = toy_env.reset(seed=seed)
        for t, action in enumerate(ep.actions):
            np.testing.assert_array_equal(ep.observations[t], obs)
            obs, reward, terminated, truncated, _ = toy_env.step(action)
            assert ep.rewards[t] == pytest.approx(reward)
        assert (terminated, truncated) == (ep.terminated, ep.truncated) and (terminated or truncated)
        np.testing.assert_array_equal(ep.final_observation, obs)


# -- training: offline, online, resume -------------------------------------------------------------------------

def test_seqpolicy_train_dt_stochastic_trains_an_odt_agent_offline(tmp_path, capsys):
    from seqpolicy.cli.train import main

    out = tmp_path / "sdt"
    assert main(["dt", "--dataset", "pointreach-mixed", "--env", TOY_ID, "--stochastic", "true", "--out", str(out),
                 "--context-length", "4", "--hidden-size", "16", "--n-layer", "1", "--batch-size", "8",
                 "--steps", "4", "--eval-every", "0", "--log-every", "2", "--device", "cpu", "--quiet"]) == 0, \
        capsys.readouterr().err
    agent = seqpolicy.load_agent(out, device="cpu")
    assert isinstance(agent, OnlineDTAgent) and agent.info["train_config"]["stochastic"]
    assert [int(r["step"]) for r in log_rows(out)] == [2, 4]


def test_an_online_run_logs_return_against_env_steps_and_keeps_its_buffer_in_checkpoints(toy_data, tmp_path):
    run = tmp_path / "run"
    agent = odt.train_odt(toy_data, env_id=TOY_ID, run_dir=run, progress=False, **TINY)
    rows = [r for r in log_rows(run) if r.get("online/env_steps")]
    env_steps = [int(float(r["online/env_steps"])) for r in rows]
    assert env_steps == sorted(env_steps) and env_steps[-1] >= 300 and len(rows) == agent.info["online"]["iterations"]
    assert all(0 <= float(r["online/return"]) <= 50 and float(r["train/temperature"]) > 0 for r in rows)
    steps = [int(r["step"]) for r in rows]
    assert steps == list(range(6 + 3, 6 + 3 * len(rows) + 1, 3))  # pretraining's 6, then 3 per iteration
    state = json.loads((run / "checkpoint" / "online.json").read_text())
    assert state["env_steps"] == env_steps[-1] and state["buffer_online"] == min(2 * len(rows), 20)
    buffer = odt.TrajectoryBuffer.load(run / "checkpoint", state["buffer_capacity"], state["buffer_online"])
    assert len(buffer) == 20 and buffer.n_online == state["buffer_online"]
    assert agent.info["online"]["env_steps"] == env_steps[-1] and agent.info["trainer"] == "seqpolicy.train_odt"
    assert isinstance(seqpolicy.load_agent(run, device="cpu"), OnlineDTAgent)


def test_updates_per_env_step_ties_the_updates_to_the_env_steps_collected(toy_data, tmp_path):
    """With a ratio, the online updates so far are floor(ratio x online env steps) after every iteration, however
    long its episodes were, and a run interrupted between iterations resumes to the same weights and log."""
    cfg = dict(TINY, updates_per_env_step=0.04)
    agent = odt.train_odt(toy_data, env_id=TOY_ID, run_dir=tmp_path / "a", progress=False, **cfg)
    rows = [r for r in log_rows(tmp_path / "a") if r.get("online/env_steps")]
    for r in rows:
        env_steps, updates = int(float(r["online/env_steps"])), int(float(r["online/updates"]))
        assert updates == int(0.04 * env_steps) and int(r["step"]) == 6 + updates
    assert len({int(float(r["online/length"])) for r in rows}) > 1  # episodes of several lengths were met
    assert agent.info["online"]["updates"] == int(0.04 * agent.info["online"]["env_steps"])

    resumed = interrupted_then_resumed(toy_data, tmp_path / "b", cfg)
    assert same(weights(agent), weights(resumed))
    assert log_rows(tmp_path / "b") == log_rows(tmp_path / "a")


@pytest.mark.parametrize("how", ["length", "uniform"])
def test_online_windows_are_drawn_by_trajectory_length_unless_uniform_is_asked_for(how, toy_data, tmp_path,
                                                                                   monkeypatch):
    """The online phase samples as the authors do (a trajectory with probability proportional to its length),
    or with online_sampling="uniform" all trajectories alike; pretraining always by length."""
    made, build = [], odt.ODTTrainer.window_sampler

    def recording(self, agent, data, uniform_episodes=False):
        sampler = build(self, agent, data, uniform_episodes=uniform_episodes)
        made.append(sampler.ep_prob.numpy().copy())
        return sampler

    monkeypatch.setattr(odt.ODTTrainer, "window_sampler", recording)
    odt.train_odt(toy_data, env_id=TOY_ID, run_dir=tmp_path, progress=False, **dict(TINY, online_sampling=how))
    pretraining, online = made[0], made[1:]
    lengths = toy_data.lengths
    assert np.allclose(pretraining, lengths / lengths.sum())
    assert len(online) >= 2
    for prob in online:
        assert len(set(np.round(prob, 6))) > 1 if how == "length" else np.allclose(prob, 1 / len(prob))


def test_a_checkpoint_written_before_online_sampling_existed_resumes_drawing_trajectories_alike(toy_data, tmp_path):
    """Such runs drew trajectories alike (ODTTrainConfig.PREDATED): --resume keeps doing so, and a resume that asks
    for the new default is refused as a change of settings, not silently continued another way."""
    from seqpolicy.cli import train as cli

    cfg = dict(TINY, online_sampling="uniform")
    reference = odt.train_odt(toy_data, env_id=TOY_ID, run_dir=tmp_path / "a", progress=False, **cfg)
    run = tmp_path / "b"
    interrupted(toy_data, run, cfg)
    state_file = run / "checkpoint" / "trainer.json"
    state = json.loads(state_file.read_text())
    del state["train_config"]["online_sampling"]  # as a checkpoint written before the setting existed
    state_file.write_text(json.dumps(state))

    with pytest.raises(ValueError, match="online_sampling"):
        odt.train_odt(toy_data, env_id=TOY_ID, run_dir=run, resume=True, progress=False, **TINY)
    assert cli._base_config(cli.build_parser().parse_args(["odt", "--dataset", "x", "--out", str(run), "--resume"]),
                            odt.PRESETS, odt.ODTTrainConfig).online_sampling == "uniform"
    resumed = odt.train_odt(toy_data, env_id=TOY_ID, run_dir=run, resume=True, progress=False, **cfg)
    assert same(weights(reference), weights(resumed))


def test_a_ratio_of_zero_updates_is_refused():
    with pytest.raises(ValueError, match="updates_per_env_step must be > 0"):
        odt.ODTTrainConfig(updates_per_env_step=0.0)


@pytest.mark.parametrize("phase", ["pretraining", "online"])
def test_a_signal_in_either_phase_checkpoints_and_resume_is_exact(phase, toy_data, tmp_path, monkeypatch):
    """Ctrl-C during pretraining (step 4 of 6) or during the second online iteration: the run stops with a
    checkpoint, and resume ends with the weights, replay buffer and log of an uninterrupted run."""
    from seqpolicy.training.common import TrainingInterrupted, TrainingRun

    straight = odt.train_odt(toy_data, env_id=TOY_ID, run_dir=tmp_path / "straight", progress=False, **TINY)
    if phase == "pretraining":
        loop = TrainingRun.loop

        def loop_with_signal(self, train_step, **kw):
            def one_step():
                if self.step + 1 == 4:
                    os.kill(os.getpid(), signal.SIGINT)
                return train_step()
            return loop(self, one_step, **kw)

        monkeypatch.setattr(TrainingRun, "loop", loop_with_signal)
    else:
        collect, calls = odt.collect_episodes, []

        def collect_with_signal(*args, **kw):
            calls.append(1)
            if len(calls) == 2:
                os.kill(os.getpid(), signal.SIGINT)
            return collect(*args, **kw)

        monkeypatch.setattr(odt, "collect_episodes", collect_with_signal)
    with pytest.raises(TrainingInterrupted) as stopped:
        odt.train_odt(toy_data, env_id=TOY_ID, run_dir=tmp_path / "run", progress=False, **TINY)
    monkeypatch.undo()
    assert stopped.value.step == (4 if phase == "pretraining" else 6 + 2 * 3)
    resumed = odt.train_odt(toy_data, env_id=TOY_ID, run_dir=tmp_path / "run", resume=True, progress=False, **TINY)
    assert same(weights(straight), weights(resumed))
    assert log_rows(tmp_path / "run") == log_rows(tmp_path / "straight")
    for name in ("replay.safetensors", "online.json"):
        assert (tmp_path / "run" / "checkpoint" / name).read_bytes() == \
            (tmp_path / "straight" / "checkpoint" / name).read_bytes()


def test_resume_after_kill_9_continues_exactly(tmp_path):
    """The reported case: seqpolicy-train odt killed with SIGKILL (no handler runs) mid-way through its online
    phase; --resume with the same budget ends with the weights and replay buffer of an uninterrupted run."""
    from seqpolicy.cli.train import main

    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "seqpolicy.cli.train", "odt", "--dataset", "pointreach-mixed", "--env", TOY_ID,
           *TINY_CLI, "--online-steps", "1000000", "--out", str(run), "--threads", "1", "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    def online_state() -> dict:
        ckpt = find_checkpoint(run) if run.is_dir() else None  # a checkpoint being replaced is read from .old
        try:
            return json.loads((ckpt / "online.json").read_text()) if ckpt is not None else {}
        except (FileNotFoundError, json.JSONDecodeError):  # renamed while being read, or not online yet
            return {}

    try:
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline and online_state().get("iterations", 0) < 3:
            time.sleep(0.05)
        proc.kill()
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == -signal.SIGKILL, err[-3000:]
    reached = online_state()["env_steps"]
    budget = str(reached + 250)  # a few more iterations
    assert main(["odt", "--dataset", "pointreach-mixed", "--env", TOY_ID, "--out", str(run), "--resume",
                 "--online-steps", budget, "--quiet"]) == 0
    assert main(["odt", "--dataset", "pointreach-mixed", "--env", TOY_ID, *TINY_CLI, "--online-steps", budget,
                 "--out", str(tmp_path / "straight"), "--quiet"]) == 0
    for name in ("agent/model.safetensors", "checkpoint/replay.safetensors", "checkpoint/online.json"):
        assert (run / name).read_bytes() == (tmp_path / "straight" / name).read_bytes(), name


# -- bad input -----------------------------------------------------------------------------------------------

def test_bad_input_is_one_clear_line_before_any_work(toy_env, tmp_path, capsys, monkeypatch, dt_agent):
    from seqpolicy.cli.train import main

    dt_agent.save(tmp_path / "dt")
    make_odt_agent(toy_env, env_id="Hopper-v4").save(tmp_path / "hopper-odt")  # made for another env
    monkeypatch.setattr("seqpolicy.toy.make_toy_dataset", lambda *a, **k: pytest.fail("loaded the data first"))
    out = tmp_path / "out"
    base = ["odt", "--dataset", "pointreach-mixed", "--env", TOY_ID, "--out", str(out), "--quiet"]
    cases = [
        (["--from", str(tmp_path / "dt")], r"is a deterministic Decision Transformer \(kind 'dt'\): online "
                                           r"fine-tuning needs a stochastic one.*seqpolicy-train dt --stochastic true"),
        (["--from", str(tmp_path / "hopper-odt")], r"the agent was made for Hopper-v4, but this run collects its "
                                                   r"episodes in seqpolicy/PointReach-v0"),
        (["--online-steps", "0"], r"--online-steps must be >= 1, got 0: it is the online budget in env steps"),
        (["--from", str(tmp_path / "missing")], r"No agent at .*missing"),
    ]
    for extra, message in cases:
        assert main([*base, *extra]) == 2, extra
        err = capsys.readouterr().err.strip()
        assert err.startswith("seqpolicy-train: error:") and "\n" not in err, err
        assert re.search(message, err), (message, err)
        assert not out.exists()
    with pytest.raises(ValueError, match="online_steps must be >= 1"):
        odt.ODTTrainConfig(online_steps=0)
    with pytest.raises(ValueError, match="stochastic must be true"):
        odt.ODTTrainConfig(stochastic=False)


# -- learning ------------------------------------------------------------------------------------------------

def test_online_fine_tuning_improves_a_weak_offline_agent(tmp_path):
    """A stochastic DT pretrained only 300 steps on mostly random PointReach data (30% noisy expert, 70% random)
    scores ~14; 5000 online env steps (the pointreach preset: 10 episodes then 50 updates per iteration) take it
    to ~36 (the expert: ~41). About 21 s of one core. Fails if the online phase does not learn (no updates: 6)."""
    from seqpolicy.toy import make_toy_dataset

    data = make_toy_dataset(300, seed=0, mix=(0.0, 0.3, 0.7))
    common = dict(env_id=TOY_ID, device="cpu", precision="fp32", progress=False)
    weak = seqpolicy.train_dt(data, DT_PRESETS["pointreach"], stochastic=True, max_steps=300, eval_every=0,
                              run_dir=tmp_path / "weak", **common)
    before = seqpolicy.evaluate(weak, TOY_ID, n_episodes=20, n_envs=10).mean
    tuned = odt.train_odt(data, odt.PRESETS["pointreach"], from_agent=tmp_path / "weak" / "agent",
                          online_eval_every=0, run_dir=tmp_path / "odt", **common)
    after = seqpolicy.evaluate(tuned, TOY_ID, n_episodes=20, n_envs=10).mean
    assert before < 25, before  # weak indeed
    assert after >= before + 10 and after >= 30, (before, after)
    assert tuned.info["online"]["env_steps"] >= 5000 and tuned.info["from_agent"]["path"].endswith("agent")
