"""envs/make_seeds.py: a training seed's command is the manifest's recipe under the protocol of envs/README.md."""

from __future__ import annotations

import shlex

import pytest
from conftest import load_envs_script


@pytest.fixture(scope="module")
def make_seeds():
    return load_envs_script("make_seeds")


MANIFEST = {"agents": {"dt": "dt-medium", "bc": "bc-medium"}, "training": {
    "dt": {"command": "seqpolicy-train dt --dataset seqpolicy/walker2d-v4/medium-v0 --env Walker2d-v4 --out "
                      "runs/zoo/dt --preset cpu --steps 25000 --eval-every 1000 --eval-episodes 20 --keep-best true "
                      "--threads 1 --seed 0 --quiet"},
    "bc": {"command": "seqpolicy-train bc --dataset seqpolicy/walker2d-v4/medium-v0 --env Walker2d-v4 --out "
                      "runs/zoo/bc --preset paper --threads 1 --seed 0 --quiet"}}}


def flags(words: list[str]) -> dict[str, str]:
    return {w: words[i + 1] for i, w in enumerate(words) if w.startswith("--") and i + 1 < len(words)
            and not words[i + 1].startswith("--")}


def test_a_dt_seed_keeps_its_final_weights_at_the_declared_target(make_seeds):
    words, run = make_seeds.seed_command("Walker2d-v4", "dt", MANIFEST, 2)
    f = flags(words)
    assert words[:2] == ["seqpolicy-train", "dt"] and "--quiet" in words
    assert f["--seed"] == "2" and f["--out"] == str(run) == "runs/seeds/walker2d-v4-dt-medium-2"
    assert f["--keep-best"] == "false"  # no checkpoint chosen by evaluation
    assert f["--target-return"] == "5000"  # the DT paper's Walker2d target, declared before training
    assert f["--steps"] == "25000"  # the recipe's budget, unchanged
    assert (f["--eval-every"], f["--eval-episodes"]) == ("2500", "10")  # a held-out curve, nothing kept by it
    assert shlex.join(words).count("--seed") == 1 and shlex.join(words).count("--keep-best") == 1


def test_a_bc_seed_changes_only_its_seed_and_folder(make_seeds):
    words, run = make_seeds.seed_command("Walker2d-v4", "bc", MANIFEST, 1)
    original = shlex.split(MANIFEST["training"]["bc"]["command"])
    assert {k: v for k, v in flags(words).items() if k not in ("--seed", "--out")} == \
        {k: v for k, v in flags(original).items() if k not in ("--seed", "--out")}
    assert flags(words)["--seed"] == "1" and str(run) == "runs/seeds/walker2d-v4-bc-medium-1"


def test_an_agent_without_a_recipe_is_refused(make_seeds):
    with pytest.raises(SystemExit, match="no training command for 'tt'"):
        make_seeds.seed_command("Walker2d-v4", "tt", MANIFEST, 0)


def test_a_dataset_that_is_not_its_cards_data_is_refused(make_seeds, tmp_path, monkeypatch, toy_data):
    import json

    from make_datasets import content_sha256

    import seqpolicy.data.sources as sources

    (tmp_path / "datasets").mkdir()
    card = tmp_path / "datasets" / "medium.json"
    monkeypatch.setattr(make_seeds, "env_folder", lambda env_id: tmp_path)
    monkeypatch.setattr(make_seeds, "REPO", tmp_path)
    monkeypatch.setattr(sources, "load_trajectories", lambda source, env_id=None: toy_data)
    card.write_text(json.dumps({"content_sha256": content_sha256(toy_data)}))
    assert make_seeds.check_dataset("Walker2d-v4", "seqpolicy/walker2d-v4/medium-v0", False) == {
        "content_sha256": content_sha256(toy_data), "matches_card": True}
    card.write_text(json.dumps({"content_sha256": "0" * 64}))  # the card was made from other data
    with pytest.raises(SystemExit, match="is not the data of its card"):
        make_seeds.check_dataset("Walker2d-v4", "seqpolicy/walker2d-v4/medium-v0", False)
    allowed = make_seeds.check_dataset("Walker2d-v4", "seqpolicy/walker2d-v4/medium-v0", True)
    assert allowed["matches_card"] is False  # trained anyway, and the card will say so


def test_a_cards_curve_is_the_runs_evaluations_with_the_episodes_its_command_asked_for(make_seeds, tmp_path):
    (tmp_path / "log.csv").write_text("step,train/loss,eval/return\n100,0.5,\n200,0.4,812.5\n400,0.3,901.0\n")
    got = make_seeds.curve_record(tmp_path, "seqpolicy-train dt --eval-every 200 --eval-episodes 20")
    assert got["held_out_curve"]["points"] == [{"step": 200, "return": 812.5}, {"step": 400, "return": 901.0}]
    assert got["held_out_curve"]["seeds"].startswith("10000-10019 (20 episodes per point")
    assert make_seeds.curve_record(tmp_path / "none", "seqpolicy-train bc") == {}  # no log: no curve in the card


def test_jobs_run_every_agent_and_seed_in_order_and_report_the_failed_ones(make_seeds, tmp_path, monkeypatch, capsys):
    import argparse
    import threading

    ran, lock = [], threading.Lock()

    def call(cmd, stdout, stderr, cwd):
        words = [str(w) for w in cmd]
        with lock:
            ran.append((words[words.index("--agent") + 1], int(words[words.index("--seeds") + 1]),
                        words[words.index("--note") + 1]))
        stdout.write("log line\n")
        return 3 if ran[-1][:2] == ("bc", 2) else 0

    monkeypatch.setattr(make_seeds, "REPO", tmp_path)
    monkeypatch.setattr(make_seeds.subprocess, "call", call)
    args = argparse.Namespace(env="Walker2d-v4", jobs=2, evaluate_only=False, overwrite=False,
                              allow_other_data=False, note="beside a test")
    runs = [(name, seed) for name in ("dt", "bc") for seed in (1, 2)]
    assert make_seeds.run_jobs(args, runs) == 1  # one run failed: the exit status says so, the others ran
    assert sorted(r[:2] for r in ran) == sorted(runs) and {r[2] for r in ran} == {"beside a test"}
    ran.clear()
    args.jobs = 1
    assert make_seeds.run_jobs(args, runs) == 1
    assert [r[:2] for r in ran] == runs  # taken in the order given
    assert (tmp_path / "runs/seeds/logs/walker2d-v4-bc-2.log").read_text() == "log line\n"
    out, err = capsys.readouterr()
    assert "bc seed 2: FAILED (exit 3" in out and "4/4 runs" in out and err.count("1 of 4 runs failed: bc seed 2") == 2


def test_bad_jobs_and_agents_are_refused_before_any_run(make_seeds):
    with pytest.raises(SystemExit, match="--jobs must be at least 1"):
        make_seeds.main(["--env", "Hopper-v4", "--agent", "dt", "--seeds", "1", "--jobs", "0"])
    with pytest.raises(SystemExit, match="no zoo agent 'nope'"):
        make_seeds.main(["--env", "Hopper-v4", "--agent", "dt", "nope", "--seeds", "1", "--jobs", "2"])
