"""seqpolicy.common.envs: unknown env ids get a suggestion, agents are refused on another env or version, and
the notices about the v4 the zoo chose are filtered (by message, and only those)."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from types import SimpleNamespace

import gymnasium as gym
import pytest
from conftest import TOY_ID

from seqpolicy.common.envs import CHOSEN_V4, check_agent_env_id, check_env_id, gym_make, same_env_id


@pytest.mark.parametrize("env_id, message", [
    ("Hoper-v4", r"Unknown env id 'Hoper-v4': Environment `Hoper` doesn't exist\. Did you mean: `Hopper`\?"),
    ("PointReach-v0", r"Did you mean: `seqpolicy/PointReach-v0`\?"),  # Gymnasium has none: the closest id
    ("Hopper-v9", r"It provides versioned environments: \[ `v2`, `v3`, `v4`, `v5` \]\.$"),
    ("Hopper v4", r"Malformed environment ID.* Did you mean: `Hopper-v4`\?"),
    ("nosuchpackage:Thing-v0", r"cannot import 'nosuchpackage'"),
])
def test_an_unknown_env_id_is_refused_with_a_suggestion(env_id, message):
    with pytest.raises(ValueError, match=message):
        check_env_id(env_id)
    with pytest.raises(ValueError, match=rf"Cannot make env '{env_id}': "):
        gym_make(env_id)


def test_known_ids_resolve_as_gymnasium_make_does():
    assert check_env_id("Hopper-v4").id == "Hopper-v4" and check_env_id(TOY_ID).id == TOY_ID
    assert check_env_id("Hopper").id == gym.spec("Hopper-v5").id  # no version: the newest, as gymnasium.make
    with pytest.raises(ValueError, match=r"Did you mean: `Zzyzx-v1`\?"):  # also: e.g. the zoo's env folders
        check_env_id("Zzyzx-v0", also=["Zzyzx-v1"])


def test_an_agent_is_refused_on_another_env_or_version_unless_allowed():
    v4 = SimpleNamespace(env_id="Walker2d-v4")
    check_agent_env_id(v4, "Walker2d-v4")
    with pytest.raises(ValueError, match=r"made for Walker2d-v4, not Walker2d-v5: .*allow_env_mismatch=True "
                                         r"\(--allow-env-mismatch"):
        check_agent_env_id(v4, "Walker2d-v5")
    with pytest.raises(ValueError, match="made for Walker2d-v4, not Hopper-v4"):
        check_agent_env_id(v4, "Hopper-v4")
    check_agent_env_id(v4, "Walker2d-v5", allow_env_mismatch=True)
    check_agent_env_id(SimpleNamespace(env_id=None), "Walker2d-v5")  # built in code: records no env id
    check_agent_env_id(object(), "Walker2d-v5")
    check_agent_env_id(v4, None)  # an env made without a registered id
    assert same_env_id("gymnasium.envs:Hopper-v4", "Hopper-v4") and same_env_id("Hopper", "Hopper-v5")
    assert not same_env_id("Hopper-v4", "Hopper-v5") and not same_env_id("ns/Hopper-v4", "Hopper-v4")


def test_the_v4_the_zoo_chose_makes_no_notices_and_others_still_do(capfd, tmp_path, monkeypatch):
    """Gymnasium's "out of date" for the zoo's v4 envs and MuJoCo's settotalmass (printed, and appended to
    MUJOCO_LOG.TXT in the working folder) are gone; another env's "out of date" still shows."""
    pytest.importorskip("mujoco")
    from seqpolicy.zoo import zoo_env_ids

    assert {e for e in zoo_env_ids() if e.endswith("-v4")} <= CHOSEN_V4
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for env_id in ("HalfCheetah-v4", "Hopper-v4", "InvertedPendulum-v4"):
            gym_make(env_id).close()
    notices = [str(w.message) for w in caught if "out of date" in str(w.message)]
    assert len(notices) == 1 and "InvertedPendulum-v4 is out of date" in notices[0], notices
    assert "settotalmass" not in capfd.readouterr().err
    assert not (tmp_path / "MUJOCO_LOG.TXT").exists()


def test_evaluation_on_halfcheetah_v4_prints_no_notices_in_any_process(tmp_path):
    """What the user sees: an evaluation with subprocess envs (each makes its own) prints neither notice."""
    pytest.importorskip("mujoco")
    code = ("from seqpolicy.evaluation.evaluate import evaluate\n"
            "from seqpolicy.zoo import get_agent\n"
            "agent = get_agent('HalfCheetah-v4', 'random', seed=0)\n"
            "evaluate(agent, 'HalfCheetah-v4', n_episodes=2, max_episode_steps=3)\n"
            "evaluate(agent, 'HalfCheetah-v4', n_episodes=2, n_envs=2, vectorization='async', max_episode_steps=3)\n"
            "print('done')\n")
    run = subprocess.run([sys.executable, "-W", "default", "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert run.returncode == 0 and run.stdout.strip() == "done", run.stderr
    assert "out of date" not in run.stderr and "settotalmass" not in run.stderr, run.stderr
    assert not (tmp_path / "MUJOCO_LOG.TXT").exists()
