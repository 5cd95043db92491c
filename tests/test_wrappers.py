"""Gymnasium wrappers: frozen observation normalisation, action rescaling/clipping, raw reward recording."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import seqpolicy  # noqa: F401  (registers seqpolicy/PointReach-v0)
from seqpolicy.toy import expert_action
from seqpolicy.wrappers import FrozenNormalizeObservation, RecordRawReward, RescaleClipAction

TOY = "seqpolicy/PointReach-v0"


def test_frozen_normalisation_is_fixed_and_updates_the_space():
    base = gym.make(TOY)
    mean, std = np.arange(6, dtype=np.float64) * 0.1, np.full(6, 2.0)
    env = FrozenNormalizeObservation(base, mean=mean, std=std, clip=5.0)
    obs, _ = env.reset(seed=0)
    raw, _ = base.reset(seed=0)
    np.testing.assert_allclose(obs, (raw - mean) / (std + 1e-6), rtol=1e-6)
    for _ in range(3):  # statistics never move
        obs, *_ = env.step(np.zeros(2))
    np.testing.assert_allclose(env.mean, mean) and np.testing.assert_allclose(env.scale, std + 1e-6)
    np.testing.assert_allclose(env.observation_space.high, (base.observation_space.high - mean) / (std + 1e-6),
                               rtol=1e-6)
    assert env.observation_space.contains(obs)
    assert env.spec.additional_wrappers[-1].kwargs["clip"] == 5.0  # constructor arguments are recorded
    assert env.spec.additional_wrappers[-1].kwargs["mean"] == pytest.approx(mean.tolist())


def test_frozen_normalisation_refuses_bad_statistics():
    with pytest.raises(ValueError, match=r"must have shape \(6,\)"):
        FrozenNormalizeObservation(gym.make(TOY), mean=np.zeros(5), std=np.ones(5))
    with pytest.raises(ValueError, match="std non-negative"):
        FrozenNormalizeObservation(gym.make(TOY), mean=np.zeros(6), std=-np.ones(6))


def test_rescale_clip_action_maps_onto_the_env_bounds():
    env = RescaleClipAction(gym.make(TOY))  # PointReach forces lie in [-2, 2]
    assert env.action_space.low.tolist() == [-1.0, -1.0] and env.action_space.high.tolist() == [1.0, 1.0]
    np.testing.assert_allclose(env.action(np.array([1.0, -1.0])), [2.0, -2.0])
    np.testing.assert_allclose(env.action(np.array([0.25, 7.0])), [0.5, 2.0])  # clipped
    env01 = RescaleClipAction(gym.make(TOY), low=0.0, high=1.0)
    np.testing.assert_allclose(env01.action(np.array([0.5, 0.0])), [0.0, -2.0])
    assert env01.spec.additional_wrappers[-1].kwargs == {"low": 0.0, "high": 1.0}
    with pytest.raises(ValueError, match="greater than low"):
        RescaleClipAction(gym.make(TOY), low=1.0, high=1.0)


class _BoxEnv(gym.Env):
    """Nothing but an action Box (for wrapper arithmetic)."""

    def __init__(self, low: float, high: float):
        self.action_space = gym.spaces.Box(low, high, shape=(3,), dtype=np.float32)
        self.observation_space = gym.spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)


def _gymnasium_rescale_clip(env: gym.Env) -> gym.Env:
    return gym.wrappers.ClipAction(gym.wrappers.RescaleAction(env, np.float32(-1.0), np.float32(1.0)))


def _env_actions(wrapper: gym.ActionWrapper, actions: np.ndarray) -> np.ndarray:
    """The actions the innermost env is stepped with, through every action wrapper above it."""
    out = []
    for a in actions:
        env = wrapper
        while isinstance(env, gym.ActionWrapper):
            a, env = env.action(a), env.env
        out.append(a)
    return np.stack(out)


def test_rescale_clip_action_is_not_a_composition_of_gymnasiums_wrappers():
    """Why RescaleClipAction stays: ClipAction(RescaleAction(env, -1, 1)) steps PointReach's [-2, 2] Box with
    exactly its actions, but rounds otherwise on other bounds (it computes in float32), passes float64 actions on
    as float64, and reports an unbounded action space."""
    actions = np.random.default_rng(0).uniform(-1.5, 1.5, size=(2000, 3))
    ours, theirs = RescaleClipAction(gym.make(TOY)), _gymnasium_rescale_clip(gym.make(TOY))
    mine = _env_actions(ours, actions[:, :2].astype(np.float32))
    np.testing.assert_array_equal(mine, _env_actions(theirs, actions[:, :2].astype(np.float32)))
    assert mine.dtype == np.float32 and ours.action_space.is_bounded() and not theirs.action_space.is_bounded()
    assert _env_actions(theirs, actions[:, :2]).dtype == np.float64
    ours, theirs = RescaleClipAction(_BoxEnv(-0.4, 0.4)), _gymnasium_rescale_clip(_BoxEnv(-0.4, 0.4))
    f32 = actions.astype(np.float32)
    assert not np.array_equal(_env_actions(ours, f32), _env_actions(theirs, f32))


def test_record_raw_reward_survives_outer_reward_wrappers():
    env = gym.wrappers.TransformReward(RecordRawReward(gym.make(TOY)), lambda r: -3.0 * r)
    obs, _ = env.reset(seed=0)
    raw = []
    for _ in range(20):
        obs, reward, _, _, info = env.step(expert_action(obs))
        assert reward == pytest.approx(-3.0 * info["raw_reward"])
        raw.append(info["raw_reward"])
    assert sum(raw) > 1.0
