"""TrajectoryTransformerAgent: the agent contract, actions equal to the authors' planner, bad input."""

from __future__ import annotations

import functools

import gymnasium as gym
import numpy as np
import pytest
import torch
from conftest import TOY_ID, rollout

from seqpolicy.agents.tt import Discretizer, PlannerConfig, TrajectoryTransformerAgent
from seqpolicy.agents.tt.tokens import joined_rows
from seqpolicy.common.artifact import ArtifactError
from seqpolicy.models.trajectory_transformer import TrajectoryTransformer, TTConfig

SMALL_PLANNER = {"horizon": 3, "beam_width": 4, "n_expand": 2, "max_context_transitions": 3}


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: small models on a shared 2-core machine


@functools.cache
def _toy_edges() -> np.ndarray:
    from seqpolicy.toy import make_toy_dataset

    rows = np.concatenate(joined_rows(make_toy_dataset(30, seed=0), 0.99, -100.0))
    return Discretizer.fit(rows, n_bins=20).thresholds  # (10, 21)


@pytest.fixture
def toy_thresholds():
    return _toy_edges()


def make_tt_agent(env, thresholds=None, planner="paper", seed=0, **settings):
    """An untrained TT agent (random, peaked weights) for PointReach; also used by test_agent_contract."""
    torch.manual_seed(seed)
    model = TrajectoryTransformer(TTConfig(observation_dim=6, action_dim=2, vocab_size=20, block_size=49,
                                           n_layer=2, n_head=2, n_embd=32))
    with torch.no_grad():
        model.head.weight.normal_(0.0, 0.3)
    edges = _toy_edges() if thresholds is None else thresholds
    return TrajectoryTransformerAgent(model, Discretizer(edges), env.observation_space, env.action_space,
                                      planner=planner, env_id=TOY_ID, **{**SMALL_PLANNER, **settings})



# -- TT specifics on top of tests/test_agent_contract.py (which runs its shared contract on make_tt_agent) --
def test_actions_use_the_env_units_box(toy_env, toy_thresholds):
    acts = rollout(make_tt_agent(toy_env, toy_thresholds), toy_env, seed=0, steps=20)
    assert np.abs(acts).max() > 1.0  # planned in env units: the [-2, 2] Box is used, not just [-1, 1]


def test_reset_seed_changes_sampled_plans(toy_env, toy_thresholds):
    agent = make_tt_agent(toy_env, toy_thresholds)
    first = rollout(agent, toy_env, seed=1, steps=20)
    # the seed restarts with the episode
    np.testing.assert_array_equal(first, rollout(agent, toy_env, seed=1, steps=20))
    agent.reset(seed=5)
    assert not np.array_equal(first, rollout(agent, toy_env, seed=1, steps=20))


def test_a_paused_env_is_not_planned_for_until_it_is_reset(toy_env, toy_thresholds):
    agent = make_tt_agent(toy_env, toy_thresholds)
    venv = gym.vector.SyncVectorEnv([lambda: gym.make(TOY_ID)] * 2)
    obs, _ = venv.reset(seed=[3, 4])
    agent.reset(seed=0)
    actions = agent.act(obs)
    both = agent.stats["tokens"]
    obs, rewards, *_ = venv.step(actions)
    agent.pause(envs=[1])
    actions = agent.act(obs, rewards)
    alone = agent.stats["tokens"] - both
    assert 0 < alone < 0.75 * both  # env 0 alone (its context now one transition longer); nothing for env 1
    np.testing.assert_array_equal(actions[1], np.zeros(2))  # the middle of PointReach's [-2, 2] Box
    agent.reset(envs=[1])  # a reset env acts again
    obs, rewards, *_ = venv.step(actions)
    assert not np.array_equal(agent.act(obs, rewards)[1], np.zeros(2))
    with pytest.raises(RuntimeError, match="pause\\(\\) needs a running batch"):
        make_tt_agent(toy_env, toy_thresholds).pause(envs=[0])


def test_save_load_keeps_planner_settings(toy_env, toy_thresholds, tmp_path):
    agent = make_tt_agent(toy_env, toy_thresholds, plan_freq=2)
    agent.save(tmp_path / "agent")
    loaded = TrajectoryTransformerAgent.load(tmp_path / "agent", beam_width=2)
    assert loaded.planner == PlannerConfig.from_dict({**agent.planner.to_dict(), "beam_width": 2})
    np.testing.assert_array_equal(loaded.discretizer.thresholds, agent.discretizer.thresholds)


def test_cached_and_uncached_agents_act_alike(toy_env, toy_thresholds):
    a = rollout(make_tt_agent(toy_env, toy_thresholds, planner="greedy"), toy_env, seed=4, steps=12)
    b = rollout(make_tt_agent(toy_env, toy_thresholds, planner="greedy", use_cache=False), toy_env, seed=4,
                 steps=12)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("search", [{"planner": "greedy"}, {"k_act": 1, "k_obs": None, "cdf_obs": 0.3}])
def test_greedy_shortcut_takes_the_actions_of_the_full_search(toy_env, toy_thresholds, search):
    """k_act=1 with a plan every step: generating only the first action's tokens gives the full search's
    actions (also when observations are sampled, so the beams differ), from far fewer tokens."""
    fast = make_tt_agent(toy_env, toy_thresholds, **search)
    full = make_tt_agent(toy_env, toy_thresholds, greedy_shortcut=False, **search)
    assert fast.planner.action_is_fixed
    np.testing.assert_array_equal(rollout(fast, toy_env, seed=2, steps=15), rollout(full, toy_env, seed=2, steps=15))
    assert fast.stats["tokens"] * 3 < full.stats["tokens"]
    sampled = make_tt_agent(toy_env, toy_thresholds, **{**search, "plan_freq": 2})  # follows the plan: no shortcut
    assert not sampled.planner.action_is_fixed


# -- the authors' planner, written out from their code's description, on the transformers model ---------
def _reference_plan(hf, edges, prefix, obs_dim, act_dim, horizon, beam_width, n_expand, mct, discount=0.99,
                    k_obs=1, k_act=None, k_rew=1, cdf_obs=None, cdf_act=None, cdf_rew=None):
    """The authors' ``beam_plan``: one full forward of the cropped window per token, global torch RNG."""
    t_dim = obs_dim + act_dim + 2
    max_block = min(hf.config.block_size, mct * t_dim - 1)

    def filter_cdf(logits, threshold):  # sort ascending, drop up to the last token whose cdf < threshold
        probs = logits.softmax(-1)
        srt, _ = torch.sort(probs, dim=-1)
        mask = torch.cumsum(srt, dim=-1) < threshold
        inds = torch.argmax(mask * torch.arange(logits.shape[-1]), dim=-1)
        cut = srt[torch.arange(len(logits)), inds]
        out = logits.clone()
        out[probs <= cut.unsqueeze(-1)] = -1000
        return out

    def sample_n(x, n, topk, cdf):
        probs = []
        for _ in range(n):
            if x.shape[1] > max_block:  # crop whole transitions from the left
                crop = -(-(x.shape[1] - max_block) // t_dim) * t_dim
                window = x[:, crop:]
            else:
                window = x
            logits = hf(window, return_dict=True).logits[:, -1]
            raw = logits.softmax(-1)
            if cdf is not None:
                logits = filter_cdf(logits, cdf)
            if topk is not None:
                kth = torch.topk(logits, topk).values[:, [-1]]
                logits = logits.clone()
                logits[logits < kth] = -float("inf")
            x = torch.cat([x, torch.multinomial(logits.softmax(-1), 1)], dim=1)
            probs.append(raw)
        return x, probs

    def expectation(p, dim):  # the authors: probs @ left and probs @ right edges, averaged; stop dropped
        p = p[:, :-1].numpy()
        return torch.as_tensor((p @ edges[:-1, dim] + p @ edges[1:, dim]) / 2.0, dtype=torch.float32)

    x = prefix.repeat(beam_width, 1)
    rewards = torch.zeros(beam_width, horizon + 1)
    discounts = discount ** torch.arange(horizon + 1)
    for t in range(horizon):
        x, rewards = x.repeat(n_expand, 1), rewards.repeat(n_expand, 1)
        x, _ = sample_n(x, act_dim, k_act, cdf_act)
        x, (p_r, p_v) = sample_n(x, 2, k_rew, cdf_rew)
        rewards[:, t], rewards[:, t + 1] = expectation(p_r, -2), expectation(p_v, -1)
        values, inds = torch.topk((rewards * discounts).sum(-1), beam_width)
        x, rewards = x[inds], rewards[inds]
        if t < horizon - 1:
            x, _ = sample_n(x, obs_dim, k_obs, cdf_obs)
    return x.view(beam_width, -1, t_dim)[:, -horizon:][values.argmax()]


def _discretize(edges, x):  # the authors' rule on their (N+1, dims) edges
    idx = (x[None] >= edges[:, : len(x)]).sum(0) - 1
    return np.clip(idx, 0, edges.shape[0] - 2)


@pytest.mark.parametrize("search", ["greedy", "paper"])
def test_from_pretrained_actions_match_the_reference_planner(tmp_path, toy_thresholds, search):
    """Greedy: the issue's requirement. Paper filters (cdf_act 0.6, sampled actions) from one seed: beam
    expansion, selection and the cache's reindexing must follow the authors' loop draw for draw."""
    tt = pytest.importorskip("transformers.models.deprecated.trajectory_transformer",
                             reason="needs transformers>=4.40,<5 (pip install 'seqpolicy[test]')")
    torch.manual_seed(0)
    hf = tt.TrajectoryTransformerModel(tt.TrajectoryTransformerConfig(
        observation_dim=6, action_dim=2, transition_dim=10, vocab_size=20, block_size=49, n_layer=2, n_head=2,
        n_embd=32)).eval()
    with torch.no_grad():
        hf.pos_emb.normal_(0.0, 0.5)
        hf.head.weight.mul_(4.0)
    hf.save_pretrained(tmp_path / "hf")
    env = gym.make(TOY_ID)
    mct, settings = 3, {"horizon": 3, "beam_width": 4, "n_expand": 2}
    agent = TrajectoryTransformerAgent.from_pretrained(
        tmp_path / "hf", toy_thresholds, planner=search, max_context_transitions=mct, seed=11,
        observation_space=env.observation_space, action_space=env.action_space, **settings)
    filters = PlannerConfig.preset(search).to_dict()
    filters = {k: filters[k] for k in ("k_obs", "k_act", "k_rew", "cdf_obs", "cdf_act", "cdf_rew")}
    edges = toy_thresholds.T  # the authors' layout: (N+1, transition_dim)
    obs, _ = env.reset(seed=7)
    context, reward = [], None
    torch.manual_seed(11)  # the reference draws from the global generator, the agent from its own (seed 11)
    for _ in range(8):
        prefix = torch.as_tensor(np.concatenate(context + [_discretize(edges, obs)]))[None]
        with torch.no_grad():
            plan = _reference_plan(hf, edges, prefix, 6, 2, mct=mct, **settings, **filters).numpy()
        a_tok = plan[0, 6:8]  # first planned transition's action tokens -> bin midpoints
        ref_action = (edges[a_tok, [6, 7]] + edges[a_tok + 1, [6, 7]]) / 2.0
        action = agent.act(obs, reward)
        np.testing.assert_allclose(action, ref_action, atol=1e-5)
        next_obs, reward, term, trunc, _ = env.step(ref_action)
        context = (context + [_discretize(edges, np.r_[obs, ref_action, reward, 1e6])])[-mct:]
        obs = next_obs
        assert not (term or trunc)


# -- bad input --------------------------------------------------------------------------------------------
def test_bad_input_is_explained(toy_env, toy_thresholds, tmp_path):
    agent = make_tt_agent(toy_env, toy_thresholds)
    obs, _ = toy_env.reset(seed=0)
    with pytest.raises(ValueError, match="expected"):
        agent.act(obs[:4])
    with pytest.raises(ValueError, match="NaN"):
        agent.act(np.full(6, np.nan))
    agent.act(obs)
    with pytest.raises(ValueError, match="reward is missing"):
        agent.act(obs)
    with pytest.raises(ValueError, match=r"thresholds have shape \(9, 21\)"):
        make_tt_agent(toy_env, toy_thresholds[:9])
    with pytest.raises(ValueError, match="non-decreasing"):
        make_tt_agent(toy_env, toy_thresholds[:, ::-1])
    with pytest.raises(ValueError, match="Unknown planner settings"):
        make_tt_agent(toy_env, toy_thresholds, beam=3)
    hopper_space = gym.spaces.Box(-np.inf, np.inf, (11,), np.float32)
    with pytest.raises(ValueError, match="another environment"):
        TrajectoryTransformerAgent(agent.model, agent.discretizer, hopper_space, toy_env.action_space)
    agent.save(tmp_path / "a")
    with pytest.raises(ArtifactError, match="not a 'dt'|holds a 'tt'"):
        from seqpolicy.common.artifact import load_artifact

        load_artifact(tmp_path / "a", "dt")
    other = make_tt_agent(toy_env, toy_thresholds)
    other.model = TrajectoryTransformer(TTConfig(observation_dim=6, action_dim=2, vocab_size=20, block_size=49,
                                                 n_layer=1, n_head=2, n_embd=32))
    other.save(tmp_path / "b")
    import json

    doc = json.loads((tmp_path / "b" / "agent.json").read_text())
    doc["model_config"]["n_layer"] = 2  # a description that does not fit the weights
    (tmp_path / "b" / "agent.json").write_text(json.dumps(doc))
    with pytest.raises(ArtifactError, match="Cannot build a TT agent"):
        TrajectoryTransformerAgent.load(tmp_path / "b")


def test_planner_presets():
    assert PlannerConfig.preset("paper") == PlannerConfig()
    paper = PlannerConfig.preset("paper")
    assert (paper.horizon, paper.beam_width, paper.n_expand, paper.cdf_act, paper.max_context_transitions) == (
        15, 128, 2, 0.6, 5)
    assert PlannerConfig.preset("cpu").beam_width < paper.beam_width
