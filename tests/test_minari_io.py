"""Minari both ways with Minari's own code: its DataCollector's datasets train a DT, its load_dataset reads what
seqpolicy-collect writes, and its official namespaced ids are local ids (never downloaded)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from conftest import TOY_ID

from seqpolicy.data.sources import load_trajectories

minari = pytest.importorskip("minari", reason="needs the datasets extra: pip install -e .[datasets]")


@pytest.fixture
def minari_dir(tmp_path, monkeypatch):
    path = tmp_path / "minari"
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(path))
    return path


def _record_with_data_collector(env_id: str, dataset_id: str, n_episodes: int, policy=None):
    """What a Minari user does: wrap the env in DataCollector, step it, create_dataset (needs minari[create])."""
    pytest.importorskip("jax", reason="DataCollector needs minari[create]: pip install -e .[test]")
    from minari import DataCollector

    env = DataCollector(gym.make(env_id))
    env.action_space.seed(0)
    for i in range(n_episodes):
        obs, _ = env.reset(seed=i)
        done = False
        while not done:
            action = env.action_space.sample() if policy is None else policy(obs)
            obs, _, terminated, truncated, _ = env.step(action)
            done = terminated or truncated
    with pytest.warns(UserWarning):  # Minari asks for an author, a description...
        dataset = env.create_dataset(dataset_id=dataset_id, algorithm_name="scripted")
    env.close()
    return dataset


def _assert_same_episodes(minari_dataset, data) -> None:
    """Minari's own episodes (T + 1 observations) hold the arrays seqpolicy reads (in seqpolicy's dtypes:
    float32 observations and rewards)."""
    episodes = list(minari_dataset.iterate_episodes())
    assert len(episodes) == len(data.episodes) > 0
    for theirs, ours in zip(episodes, data.episodes, strict=True):
        np.testing.assert_array_equal(np.asarray(theirs.observations[:-1], dtype=np.float32), ours.observations)
        np.testing.assert_array_equal(np.asarray(theirs.observations[-1], dtype=np.float32), ours.final_observation)
        np.testing.assert_array_equal(np.asarray(theirs.actions, dtype=ours.actions.dtype), ours.actions)
        np.testing.assert_array_equal(np.asarray(theirs.rewards, dtype=ours.rewards.dtype), ours.rewards)
        assert (bool(theirs.terminations[-1]), bool(theirs.truncations[-1])) == (ours.terminated, ours.truncated)


def test_data_collector_dataset_loads_and_trains_a_dt(minari_dir):
    import seqpolicy
    from seqpolicy.toy import ScriptedPolicy

    recorded = _record_with_data_collector(TOY_ID, "pointreach/collector-v0", 12, ScriptedPolicy(noise=0.5, seed=0))
    data = load_trajectories("pointreach/collector-v0", env_id=TOY_ID)
    assert (data.env_id, data.dataset_id) == (TOY_ID, "pointreach/collector-v0")
    _assert_same_episodes(recorded, data)
    agent = seqpolicy.train_dt("pointreach/collector-v0", env_id=TOY_ID, max_steps=5, context_length=4,
                               hidden_size=16, n_layer=1, batch_size=8, eval_every=0, device="cpu", progress=False)
    assert agent.dataset_id == "pointreach/collector-v0"
    assert agent.info["train_steps"] == 5
    action = agent.act(np.zeros(6, dtype=np.float32))
    assert action.shape == (2,) and np.isfinite(action).all()


def test_seqpolicy_collect_datasets_open_with_minari(minari_dir, capsys):
    from seqpolicy.cli.collect import main as collect_main

    assert collect_main(["--env", TOY_ID, "--policy", "pointreach-noisy", "--steps", "130", "--seed", "3",
                         "--dataset-id", "pointreach/noisy-v0", "--no-progress"]) == 0
    capsys.readouterr()
    dataset = minari.load_dataset("pointreach/noisy-v0")  # Minari's own reader
    assert (dataset.total_episodes, dataset.total_steps) == (3, 130)
    assert dataset.spec.env_spec.id == TOY_ID
    data = load_trajectories("pointreach/noisy-v0")
    assert data.lengths.tolist() == [50, 50, 30] and data.episodes[-1].truncated
    _assert_same_episodes(dataset, data)


def test_a_write_stopped_halfway_leaves_no_dataset_behind(minari_dir, monkeypatch):
    """Ctrl-C or SIGTERM (seqpolicy-collect's last seconds) while the dataset is written: the half-written
    dataset is deleted, so the id stays free for the next try."""
    from seqpolicy.data.minari_io import check_new_dataset_id, local_minari_ids, write_minari
    from seqpolicy.toy import make_toy_dataset

    create = minari.create_dataset_from_buffers

    def create_then_stop(*args, **kwargs):
        create(*args, **kwargs)  # Minari's part is on disk, seqpolicy's metadata is not
        raise KeyboardInterrupt

    monkeypatch.setattr(minari, "create_dataset_from_buffers", create_then_stop)
    with pytest.raises(KeyboardInterrupt):
        write_minari(make_toy_dataset(n_episodes=2, seed=0), "stopped/toy-v0", env_id=TOY_ID)
    assert local_minari_ids() == [] and check_new_dataset_id("stopped/toy-v0") is False


def test_minari_official_ids_are_local_ids(minari_dir):
    """mujoco/hopper/medium-v0 (namespaces with slashes, as Minari publishes them) loads from the local store;
    a few Hopper-v5 steps stand in for the real dataset, which tests never download."""
    recorded = _record_with_data_collector("Hopper-v5", "mujoco/hopper/medium-v0", 2)
    assert (minari_dir / "mujoco" / "hopper" / "medium-v0" / "data").is_dir()
    assert "mujoco/hopper/medium-v0" in minari.list_local_datasets()
    with pytest.warns(UserWarning, match="collected on Hopper-v5, not Hopper-v4"):
        data = load_trajectories("mujoco/hopper/medium-v0", env_id="Hopper-v4")
    assert data.dataset_id == "mujoco/hopper/medium-v0" and data.env_id == "Hopper-v5"
    _assert_same_episodes(recorded, data)


def test_missing_official_id_says_the_minari_command_that_fetches_it(minari_dir):
    with pytest.raises(FileNotFoundError, match=r"No Minari dataset 'mujoco/hopper/expert-v0' on this machine.*"
                                                r"fetch it with Minari's own CLI: `minari download "
                                                r"mujoco/hopper/expert-v0`"):
        load_trajectories("mujoco/hopper/expert-v0")
    assert not (minari_dir / "mujoco").exists()  # nothing was downloaded


def test_missing_seqpolicy_id_says_how_to_make_it(minari_dir):
    """seqpolicy's own datasets are not on Minari's server: the error says how to make them instead."""
    with pytest.raises(FileNotFoundError, match=r"seqpolicy/hopper-v4/medium-v0.*make_datasets\.py") as info:
        load_trajectories("seqpolicy/hopper-v4/medium-v0")
    assert "minari download" not in str(info.value)
