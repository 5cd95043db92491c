"""evaluate_parallel and seqpolicy-eval --workers: a split run scores the same episodes as one process, with the
same draws; the CLI's choice of workers; bad input."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from seqpolicy.cli import eval as eval_cli
from seqpolicy.evaluation.evaluate import evaluate
from seqpolicy.evaluation.parallel import evaluate_parallel, split_episodes
from seqpolicy.zoo import get_agent


def test_split_episodes_is_consecutive_even_and_never_empty():
    assert split_episodes(5, 2) == [(0, 3), (3, 2)]
    assert split_episodes(4, 2) == [(0, 2), (2, 2)]
    assert split_episodes(2, 8) == [(0, 1), (1, 1)]
    for n, w in ((1, 1), (7, 3), (100, 2), (3, 5)):
        parts = split_episodes(n, w)
        assert sum(c for _, c in parts) == n and all(c >= 1 for _, c in parts)
        assert [f for f, _ in parts] == list(np.cumsum([0] + [c for _, c in parts])[:-1])


class Sink:
    """A progress sink: what the parent's bar would be told."""

    def __init__(self):
        self.env_steps, self.lengths = 0, []

    def steps(self, n):
        self.env_steps += n

    def episode(self, length):
        self.lengths.append(length)


def test_a_sampling_planner_split_over_workers_plays_the_one_process_episodes():
    """The TT samples its plans from a generator per env that restarts from the agent's seed at each episode;
    the workers reset the agent with the whole run's seed (agent_seed), so episode i draws as it does in one
    process. Without that, the second worker's episodes would be sampled from seed + 2 and differ. The workers'
    progress reaches the parent's sink."""
    load = functools.partial(get_agent, "Hopper-v4", "tt")
    one = evaluate(load(), "Hopper-v4", 3, seed=7, n_envs=3, max_episode_steps=6)
    sink = Sink()
    split = evaluate_parallel(load, "Hopper-v4", 3, seed=7, n_envs=3, workers=2, max_episode_steps=6, progress=sink)
    assert split.seeds == [7, 8, 9]
    assert split.lengths == one.lengths
    np.testing.assert_allclose(split.returns, one.returns, rtol=0, atol=1e-9)
    assert split.conditions["workers"] == 2
    assert split.conditions["n_envs"] == [2, 1]  # each part's own batch, recorded
    for a, b in zip(split.actions, one.actions, strict=True):  # what videos replay
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    assert sink.env_steps == split.env_steps and sorted(sink.lengths) == sorted(split.lengths)


def test_a_workers_error_reaches_the_caller():
    load = functools.partial(get_agent, "Hopper-v4", "dt")
    with pytest.raises(ValueError, match="does not match HalfCheetah-v4"):
        evaluate_parallel(load, "HalfCheetah-v4", 2, workers=2, max_episode_steps=3)


@pytest.mark.parametrize("bad", [{"workers": 0}, {"n_envs": 0}, {"n_episodes": 0}, {"seed": -1},
                                 {"threads": 0}])
def test_bad_counts_are_refused_before_any_worker_starts(bad):
    args = {"n_episodes": 2, "seed": 0, "n_envs": 1, "workers": 2, "threads": 1, **bad}
    with pytest.raises(ValueError, match="must be"):
        evaluate_parallel(print, "Hopper-v4", args.pop("n_episodes"), **args)


def test_auto_uses_every_core_for_a_planner_and_one_process_for_the_rest(monkeypatch):
    monkeypatch.setattr("seqpolicy.evaluation.parallel.usable_cores", lambda: 2)
    tt, dt = get_agent("Hopper-v4", "tt"), get_agent("Hopper-v4", "dt")
    assert eval_cli.choose_workers("auto", tt, 5, "sync") == 2
    assert eval_cli.choose_workers("auto", tt, 1, "sync") == 1
    assert eval_cli.choose_workers("auto", dt, 5, "sync") == 1
    assert eval_cli.choose_workers("auto", tt, 5, "sync", threads=2) == 1  # the cores are full at 2 threads each
    assert eval_cli.choose_workers(3, dt, 5, "sync") == 3  # asked for: as given, at most one per episode
    assert eval_cli.choose_workers(3, dt, 2, "sync") == 2
    with pytest.raises(ValueError, match="choose one"):
        eval_cli.choose_workers(2, dt, 5, "async")


def test_cli_evaluates_in_workers_and_records_them(tmp_path, capsys):
    out = tmp_path / "r.json"
    assert eval_cli.main(["--env", "Hopper-v4", "--agent", "dt", "--episodes", "2", "--max-episode-steps", "4",
                          "--workers", "2", "--no-video", "--json", str(out)]) == 0
    import json

    doc = json.loads(out.read_text())["evaluation"]
    assert doc["conditions"]["workers"] == 2 and doc["lengths"] == [4, 4]
    assert "2 worker processes" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        eval_cli.build_parser().parse_args(["--env", "Hopper-v4", "--workers", "0"])


def test_a_worker_that_dies_without_a_result_is_reported_not_waited_for():
    import os

    with pytest.raises(RuntimeError, match="stopped without a result"):
        evaluate_parallel(functools.partial(os._exit, 3), "Hopper-v4", 2, workers=2, max_episode_steps=3)
