"""load_trajectories: D4RL HDF5 splitting, seqpolicy npz, statistics and the bad-input messages."""

from __future__ import annotations

import re

import h5py
import numpy as np
import pytest

from seqpolicy.data.sources import load_trajectories, validate, write_d4rl_hdf5
from seqpolicy.data.stats import dataset_info, format_info
from seqpolicy.data.trajectories import Episode, Trajectories


def _write_h5(path, n=10, obs_dim=3, drop=None, **overrides):
    rng = np.random.default_rng(0)
    arrays = {
        "observations": rng.normal(size=(n, obs_dim)).astype(np.float32),
        "next_observations": rng.normal(size=(n, obs_dim)).astype(np.float32),
        "actions": rng.uniform(-1, 1, size=(n, 2)).astype(np.float32),
        "rewards": np.arange(n, dtype=np.float32),
        "terminals": np.zeros(n, dtype=bool),
        "timeouts": np.zeros(n, dtype=bool),
    }
    arrays.update(overrides)
    with h5py.File(path, "w") as f:
        for k, v in arrays.items():
            if k != drop:
                f.create_dataset(k, data=v)
    return arrays


def test_d4rl_hdf5_splits_at_terminals_and_timeouts_keeping_the_trailing_partial(tmp_path):
    terminals = np.zeros(10, dtype=bool)
    timeouts = np.zeros(10, dtype=bool)
    terminals[2] = True  # episode 0: steps 0-2, fell over
    timeouts[6] = True  # episode 1: steps 3-6, time limit
    arrays = _write_h5(tmp_path / "d.hdf5", terminals=terminals, timeouts=timeouts)  # episode 2: 7-9, cut

    data = load_trajectories(tmp_path / "d.hdf5")

    assert data.lengths.tolist() == [3, 4, 3]
    assert [ep.terminated for ep in data] == [True, False, False]
    assert [ep.truncated for ep in data] == [False, True, True]
    assert data.returns.tolist() == [0 + 1 + 2, 3 + 4 + 5 + 6, 7 + 8 + 9]
    np.testing.assert_array_equal(data.episodes[1].observations, arrays["observations"][3:7])
    np.testing.assert_array_equal(data.episodes[1].final_observation, arrays["next_observations"][6])


def test_hdf5_round_trip_and_env_check(tmp_path):
    from seqpolicy.toy import make_toy_dataset

    data = make_toy_dataset(n_episodes=6, seed=1)
    write_d4rl_hdf5(data, tmp_path / "toy.h5")
    back = load_trajectories(tmp_path / "toy.h5", env_id="seqpolicy/PointReach-v0")
    assert back.env_id == "seqpolicy/PointReach-v0"
    np.testing.assert_allclose(back.returns, data.returns, rtol=1e-6)
    assert [ep.terminated for ep in back] == [ep.terminated for ep in data]


def test_missing_hdf5_key_is_named(tmp_path):
    _write_h5(tmp_path / "d.hdf5", drop="timeouts")
    with pytest.raises(KeyError, match="no 'timeouts' dataset"):
        load_trajectories(tmp_path / "d.hdf5")


def test_nan_is_reported_with_count_and_first_position(tmp_path):
    obs = np.zeros((10, 3), dtype=np.float32)
    obs[4, 1] = np.nan
    obs[8, 0] = np.inf
    timeouts = np.zeros(10, dtype=bool)
    timeouts[2] = True
    _write_h5(tmp_path / "d.hdf5", observations=obs, timeouts=timeouts)
    with pytest.raises(ValueError, match=r"observations contains 2 NaN/inf value\(s\), the first at episode 1, "
                                         r"step 1, dimension 1"):
        load_trajectories(tmp_path / "d.hdf5")


def test_short_episodes_are_skipped_with_a_warning(tmp_path):
    terminals = np.zeros(10, dtype=bool)
    terminals[[0, 5]] = True  # a 1-step episode, then 5 steps, then 4
    _write_h5(tmp_path / "d.hdf5", terminals=terminals)
    with pytest.warns(UserWarning, match=r"skipped 1 episode\(s\) shorter than 2 steps \(of 3\)"):
        data = load_trajectories(tmp_path / "d.hdf5")
    assert data.lengths.tolist() == [5, 4]


def test_all_episodes_too_short_is_an_error():
    data = Trajectories([Episode(np.zeros((1, 2)), np.zeros((1, 1)), np.zeros(1))])
    with pytest.raises(ValueError, match="every episode is shorter than 2 steps"):
        validate(data)


def test_obs_size_mismatch_names_both_sizes(tmp_path):
    _write_h5(tmp_path / "d.hdf5", obs_dim=3)
    with pytest.raises(ValueError, match=r"observations of size 3 but the environment's are \(6,\)"):
        load_trajectories(tmp_path / "d.hdf5", env_id="seqpolicy/PointReach-v0")


def test_missing_file_and_unknown_suffix(tmp_path):
    with pytest.raises(FileNotFoundError, match="No such dataset file"):
        load_trajectories(tmp_path / "nope.hdf5")
    (tmp_path / "x.csv").write_text("1,2")
    with pytest.raises(ValueError, match="expected a D4RL .hdf5/.h5 file"):
        load_trajectories(tmp_path / "x.csv")


SPOIL = {  # what can happen to a dataset file on the way to a user
    "empty": lambda good: b"",
    "other format": lambda good: b"episode,return\n0,12.5\n",
    "truncated": lambda good: good[: len(good) // 2],
}


@pytest.mark.parametrize("suffix", [".hdf5", ".npz"])
@pytest.mark.parametrize("spoil, message", [("empty", r"the file is empty \(0 bytes\)"),
                                            ("other format", r"it is not an? (HDF5|\.npz)"),
                                            ("truncated", r"it is an? (HDF5|\.npz).* file but damaged or truncated")])
def test_unreadable_dataset_file_is_named_with_what_is_wrong(tmp_path, suffix, spoil, message):
    from seqpolicy.toy import make_toy_dataset

    data, good, bad = make_toy_dataset(n_episodes=3, seed=0), tmp_path / f"good{suffix}", tmp_path / f"bad{suffix}"
    write_d4rl_hdf5(data, good) if suffix == ".hdf5" else data.save(good)
    bad.write_bytes(SPOIL[spoil](good.read_bytes()))
    with pytest.raises(ValueError, match=rf"Cannot read {re.escape(str(bad))}: {message}"):
        load_trajectories(bad)


@pytest.mark.parametrize("by", ["id", "folder"])
@pytest.mark.parametrize("file, spoil, message", [
    ("main_data.hdf5", "empty", "its data file is empty, damaged or truncated"),
    ("main_data.hdf5", "truncated", "its data file is empty, damaged or truncated"),
    ("metadata.json", "truncated", "metadata.json is not valid JSON"),
])
def test_damaged_minari_dataset_names_its_folder(tmp_path, monkeypatch, by, file, spoil, message):
    pytest.importorskip("minari")
    from seqpolicy.data.minari_io import write_minari
    from seqpolicy.toy import make_toy_dataset

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    with pytest.warns(UserWarning, match="no final observation"):  # the toy data keeps none
        write_minari(make_toy_dataset(n_episodes=3, seed=0), "spoilt/toy-v0", env_id="seqpolicy/PointReach-v0")
    data_dir = tmp_path / "minari" / "spoilt" / "toy-v0" / "data"
    (data_dir / file).write_bytes(SPOIL[spoil]((data_dir / file).read_bytes()))
    with pytest.raises(ValueError, match=rf"Cannot read the Minari dataset in {re.escape(str(data_dir))}: {message}"):
        load_trajectories("spoilt/toy-v0" if by == "id" else data_dir.parent)


def test_malformed_minari_id_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    pytest.importorskip("minari")
    from seqpolicy.data.minari_io import local_minari_ids, write_minari
    from seqpolicy.toy import make_toy_dataset

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    with pytest.raises(ValueError, match=r"Malformed Minari dataset id 'my data': ids are \[namespace/\]name-vN"):
        write_minari(make_toy_dataset(n_episodes=2, seed=0), "my data", env_id="seqpolicy/PointReach-v0")
    assert local_minari_ids() == []  # a half-made folder would break listing the store


def test_unknown_minari_id_lists_local_datasets(tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    with pytest.raises(FileNotFoundError, match=r"No Minari dataset 'nobody/nothing-v0'.*Local datasets: none.*"
                                                r"seqpolicy-collect"):
        load_trajectories("nobody/nothing-v0")


def test_npz_round_trip(tmp_path):
    from seqpolicy.toy import make_toy_dataset

    data = make_toy_dataset(n_episodes=5, seed=2)
    data.save(tmp_path / "toy.npz")
    back = load_trajectories(tmp_path / "toy.npz")
    assert back.env_id == "seqpolicy/PointReach-v0"
    np.testing.assert_allclose(back.returns, data.returns, rtol=1e-6)


def test_stats_on_hand_made_data():
    eps = [
        Episode(np.array([[0.0, 1.0], [2.0, 3.0]]), np.zeros((2, 1)), np.array([1.0, 2.0]), terminated=True,
                truncated=False),
        Episode(np.array([[4.0, 5.0], [6.0, 7.0], [8.0, 9.0]]), np.array([[-1.0], [0.5], [1.0]]),
                np.array([10.0, 0.0, -4.0])),
    ]
    data = Trajectories(eps, env_id="Fake-v0", dataset_id="hand")
    s = data.stats()
    assert (s.n_episodes, s.n_transitions, s.n_terminated) == (2, 5, 1)
    assert (s.return_min, s.return_mean, s.return_max) == (3.0, 4.5, 6.0)
    assert (s.length_min, s.length_mean, s.length_max) == (2, 2.5, 3)
    np.testing.assert_allclose(s.obs_mean, [4.0, 5.0])
    np.testing.assert_allclose(s.obs_std, [np.sqrt(8.0), np.sqrt(8.0)], rtol=1e-6)
    info = dataset_info(data)
    assert info["action_min"] == [-1.0] and info["action_max"] == [1.0]
    assert info["terminated"] == 1 and info["truncated"] == 1
    text = format_info(info)
    assert "episodes     2 (1 terminated, 1 truncated)" in text
    assert "return       min 3.00  mean 4.50  std 1.50  max 6.00" in text
