"""The package imports quickly and lightly, and exposes its public names lazily."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("stable_baselines3", "minari", "matplotlib", "imageio", "h5py", "transformers")


def test_import_is_light():
    code = f"import sys, seqpolicy; heavy = {HEAVY!r}; print(','.join(m for m in heavy if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"import seqpolicy pulled in: {out}"


def test_public_names_resolve_without_optional_packages():
    code = ("import sys, seqpolicy; seqpolicy.DecisionTransformerAgent; seqpolicy.train_dt; seqpolicy.evaluate; "
            f"heavy = {HEAVY!r}; print(','.join(m for m in heavy if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"the DT agent, trainer or evaluate() pulled in: {out}"


def test_all_lists_every_lazy_name():
    import seqpolicy

    assert sorted(seqpolicy.__all__) == sorted(seqpolicy._LAZY)
    for name in seqpolicy.__all__:
        if name not in ("SB3Agent",):  # needs the sb3 extra at attribute access
            getattr(seqpolicy, name)


def test_unknown_attribute_is_an_attribute_error():
    import pytest

    import seqpolicy

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        seqpolicy.nope  # noqa: B018


def test_toy_env_passes_gymnasium_env_checker():
    import gymnasium as gym
    from gymnasium.utils.env_checker import check_env

    env = gym.make("seqpolicy/PointReach-v0")
    check_env(env.unwrapped, skip_render_check=False)
    assert env.spec.max_episode_steps == 50
