"""Collection on PointReach, Minari writing without jax, and the collect/dataset CLIs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from seqpolicy.collect import collect, write_collected
from seqpolicy.data.sources import load_trajectories

ENV = "seqpolicy/PointReach-v0"


@pytest.fixture
def minari_dir(tmp_path, monkeypatch):
    path = tmp_path / "minari"
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(path))
    return path


def test_collect_then_load_round_trip_through_minari(minari_dir):
    import minari

    data = collect(ENV, "pointreach-expert", n_steps=230, seed=5, progress=False)
    assert data.lengths.tolist() == [50, 50, 50, 50, 30]  # the last episode is cut by the step budget
    assert data.episodes[-1].truncated and not data.episodes[-1].terminated
    write_collected(data, "pointreach/expert-v0", description="test")

    ds = minari.load_dataset("pointreach/expert-v0")  # Minari itself reads what we wrote
    assert (ds.total_episodes, ds.total_steps) == (5, 230)
    seeds = [m["seed"] for m in ds.storage.get_episode_metadata(range(5))]
    assert seeds == [5, 6, 7, 8, 9]

    back = load_trajectories("pointreach/expert-v0", env_id=ENV)
    assert back.env_id == ENV
    assert back.lengths.tolist() == data.lengths.tolist()
    for a, b in zip(data.episodes, back.episodes, strict=True):
        np.testing.assert_array_equal(a.observations, b.observations)
        np.testing.assert_array_equal(a.actions, b.actions)
        np.testing.assert_allclose(a.rewards, b.rewards)
        np.testing.assert_array_equal(a.final_observation, b.final_observation)
        assert (a.terminated, a.truncated) == (b.terminated, b.truncated)
    meta = back.metadata["minari"]["seqpolicy"]
    assert meta["policy"] == {"kind": "scripted", "name": "pointreach-expert", "noise": 0.0}
    assert meta["seed"] == 5 and meta["n_steps"] == 230 and meta["env_id"] == ENV
    finished = data.returns[:4]
    assert meta["returns_of_finished_episodes"]["mean"] == pytest.approx(finished.mean())
    # a Minari folder path loads too
    assert len(load_trajectories(minari_dir / "pointreach" / "expert-v0")) == 5


def test_other_env_version_warns(tmp_path):
    data = collect(ENV, "random", n_episodes=2, progress=False)
    data.env_id = "seqpolicy/PointReach-v9"
    data.save(tmp_path / "d.npz")
    with pytest.warns(UserWarning, match="collected on seqpolicy/PointReach-v9, not seqpolicy/PointReach-v0"):
        load_trajectories(tmp_path / "d.npz", env_id=ENV)


def test_npz_keeps_final_observations(tmp_path):
    data = collect(ENV, "pointreach-expert", n_steps=120, seed=2, progress=False)
    data.save(tmp_path / "d.npz")
    back = load_trajectories(tmp_path / "d.npz")
    for a, b in zip(data.episodes, back.episodes, strict=True):
        np.testing.assert_array_equal(a.final_observation, b.final_observation)


def test_existing_dataset_is_not_overwritten_by_accident(minari_dir):
    data = collect(ENV, "random", n_episodes=2, progress=False)
    write_collected(data, "pointreach/random-v0")
    with pytest.raises(FileExistsError, match="already exists.*bump the -vN version"):
        write_collected(data, "pointreach/random-v0")
    write_collected(data, "pointreach/random-v0", overwrite=True)


def test_action_noise_stays_in_bounds_and_changes_actions():
    clean = collect(ENV, "pointreach-expert", n_episodes=2, seed=0, progress=False)
    noisy = collect(ENV, "pointreach-expert", n_episodes=2, seed=0, action_noise=0.5, progress=False)
    acts = np.concatenate([ep.actions for ep in noisy])
    assert np.all(np.abs(acts) <= 2.0)
    assert not np.allclose(clean.episodes[0].actions[:5], noisy.episodes[0].actions[:5])
    assert noisy.metadata["action_noise"] == 0.5


def test_collect_bad_arguments():
    with pytest.raises(ValueError, match="exactly one of n_steps and n_episodes"):
        collect(ENV, "random", progress=False)
    with pytest.raises(ValueError, match="Unknown policy 'bogus'"):
        collect(ENV, "bogus", n_episodes=1, progress=False)


def test_cli_collect_and_info(minari_dir, capsys):
    from seqpolicy.cli.collect import main as collect_main
    from seqpolicy.cli.dataset import main as dataset_main

    assert collect_main(["--env", ENV, "--policy", "pointreach-noisy", "--episodes", "4", "--seed", "1",
                         "--dataset-id", "pointreach/noisy-v0", "--no-progress"]) == 0
    assert "200 transitions, 4 episodes" in capsys.readouterr().out
    assert dataset_main(["info", "pointreach/noisy-v0", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["env_id"] == ENV and info["episodes"] == 4 and info["transitions"] == 200
    assert info["provenance"]["policy"]["name"] == "pointreach-noisy"
    assert dataset_main(["info", "pointreach/noisy-v0"]) == 0
    assert "env          seqpolicy/PointReach-v0" in capsys.readouterr().out
    assert dataset_main(["info", "pointreach/missing-v0"]) == 2
    assert "Local datasets: pointreach/noisy-v0" in capsys.readouterr().err
    assert dataset_main(["list"]) == 0
    assert "pointreach/noisy-v0" in capsys.readouterr().out
