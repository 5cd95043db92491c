"""Nothing overwritten: a second run into a folder that holds one is refused before any work, unless --resume
continues it or --overwrite replaces it (and then starts clean); for every trainer, its Python API and
seqpolicy-baseline."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest
from conftest import TOY_ID

import seqpolicy
from seqpolicy.training.checkpoint import find_checkpoint, save_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: small models on a shared 2-core machine

# the smallest model of each trainer (options of seqpolicy-train); every run here takes well under a second
TINY = {"dt": ["--hidden-size", "16", "--n-layer", "1", "--batch-size", "8", "--context-length", "4"],
        "tt": ["--n-embd", "16", "--n-layer", "1", "--batch-size", "4", "--seq-transitions", "2"],
        "bc": ["--hidden-size", "16", "--batch-size", "8"]}


def train(trainer: str, out, *extra: str) -> list[str]:
    return [trainer, "--dataset", "pointreach-mixed", "--env", TOY_ID, "--out", str(out), "--eval-every", "0",
            "--device", "cpu", "--quiet", "--log-every", "1", *TINY[trainer], *extra]


def logged_steps(run) -> list[int]:
    with open(run / "log.csv") as f:
        return [int(r["step"]) for r in csv.DictReader(f)]


@pytest.mark.parametrize("trainer", ["dt", "tt", "bc"])
def test_a_second_run_into_a_finished_folder_is_refused_and_overwrite_starts_clean(trainer, tmp_path, capsys,
                                                                                      monkeypatch):
    from seqpolicy.cli import train as train_cli

    run = tmp_path / "run"
    assert train_cli.main(train(trainer, run, "--steps", "4", "--snapshot-every", "2")) == 0
    agent_before = (run / "agent" / "model.safetensors").read_bytes()
    capsys.readouterr()

    # refused before any work: the dataset is never loaded
    monkeypatch.setattr("seqpolicy.data.sources.load_trajectories",
                        lambda *a, **k: pytest.fail("loaded the data before refusing the folder"))
    assert train_cli.main(train(trainer, run, "--steps", "2")) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith(f"seqpolicy-train: error: {run} already holds a run: "), err
    for held in ("log.csv (to step 4)", "checkpoint/ (step 4)", "agent/ (4 steps)", "snapshots/ (2)", "--resume",
                 "--overwrite"):
        assert held in err, (held, err)
    assert (run / "agent" / "model.safetensors").read_bytes() == agent_before and logged_steps(run) == [1, 2, 3, 4]
    monkeypatch.undo()

    # --overwrite says what it replaces, in one line, then a fresh run: its own log, no old snapshots
    assert train_cli.main(train(trainer, run, "--steps", "2", "--overwrite")) == 0
    err = capsys.readouterr().err
    assert [line for line in err.splitlines() if "overwrite" in line] == [
        f"overwrite: deleting log.csv (to step 4), checkpoint/ (step 4), agent/ (4 steps), snapshots/ (2) in {run}; "
        "the new run starts clean."], err
    assert logged_steps(run) == [1, 2] and not (run / "snapshots").exists()
    assert json.loads((run / "agent" / "agent.json").read_text())["info"]["train_steps"] == 2
    assert json.loads((run / "checkpoint" / "trainer.json").read_text())["step"] == 2


def test_python_api_refuses_a_run_folder_unless_resume_or_overwrite(toy_data, tmp_path):
    kw = dict(env_id=TOY_ID, context_length=4, hidden_size=16, n_layer=1, batch_size=8, eval_every=0, device="cpu",
              progress=False, run_dir=tmp_path)
    (tmp_path / "notes.txt").write_text("mine")  # a file no run writes: neither a run nor deleted
    seqpolicy.train_dt(toy_data, max_steps=3, **kw)
    with pytest.raises(FileExistsError, match=r"already holds a run: log\.csv \(to step 3\), checkpoint/ \(step 3\)"
                                              r".*resume=True, overwrite=True"):
        seqpolicy.train_dt(toy_data, max_steps=3, **kw)
    with pytest.raises(ValueError, match="pass one of them"):
        seqpolicy.train_dt(toy_data, max_steps=3, resume=True, overwrite=True, **kw)
    assert seqpolicy.train_dt(toy_data, max_steps=5, resume=True, **kw).info["train_steps"] == 5
    assert seqpolicy.train_dt(toy_data, max_steps=2, overwrite=True, **kw).info["train_steps"] == 2
    assert logged_steps(tmp_path) == [2] and (tmp_path / "notes.txt").read_text() == "mine"


def test_a_folder_without_a_checkpoint_offers_only_overwrite(toy_data, tmp_path):
    """A run killed before its first checkpoint left log.csv alone: --resume cannot continue it, and the
    refusal and --resume's error both say that --overwrite is the way."""
    (tmp_path / "log.csv").write_text("step,train/loss\n100,0.5\n")
    kw = dict(env_id=TOY_ID, max_steps=2, hidden_size=16, eval_every=0, device="cpu", progress=False,
              run_dir=tmp_path)
    with pytest.raises(FileExistsError, match=r"log\.csv \(to step 100\), but no checkpoint to resume from\. "
                                              r"Nothing was changed: add --overwrite"):
        seqpolicy.train_bc(toy_data, **kw)
    with pytest.raises(FileNotFoundError, match=r"no checkpoint in .*Start over with --overwrite"):
        seqpolicy.train_bc(toy_data, resume=True, **kw)
    empty = tmp_path / "empty"
    empty.mkdir()  # an empty folder is no run
    assert seqpolicy.train_bc(toy_data, **{**kw, "run_dir": empty}).info["train_steps"] == 2


def test_replacing_a_checkpoint_never_deletes_the_only_complete_copy(toy_data, tmp_path, monkeypatch):
    """A kill between replace_folder's two renames leaves only .checkpoint.old; the next checkpoint keeps it
    until the new one is in place, so a second kill at that moment still leaves a checkpoint to resume from."""
    import torch

    agent = seqpolicy.train_bc(toy_data, env_id=TOY_ID, max_steps=2, hidden_size=16, eval_every=0, device="cpu",
                               progress=False, run_dir=tmp_path)
    (tmp_path / "checkpoint").rename(tmp_path / ".checkpoint.old")  # killed between the renames
    opt = torch.optim.AdamW(agent.policy.parameters())
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)

    rename = os.replace

    def killed_before_the_last_rename(src, dst):
        if Path(dst) == tmp_path / "checkpoint":
            raise KeyboardInterrupt  # killed again, just before the new checkpoint is renamed into place
        rename(src, dst)

    monkeypatch.setattr(os, "replace", killed_before_the_last_rename)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path, agent.save, opt, sched, 3, {})
    monkeypatch.undo()
    assert find_checkpoint(tmp_path) == tmp_path / ".checkpoint.old"
    save_checkpoint(tmp_path, agent.save, opt, sched, 3, {})  # not killed: the new one replaces the old copy
    assert find_checkpoint(tmp_path) == tmp_path / "checkpoint" and not (tmp_path / ".checkpoint.old").exists()


def test_baseline_refuses_a_run_folder_before_any_work_unless_overwrite(tmp_path, capsys):
    pytest.importorskip("stable_baselines3")
    from seqpolicy.cli.baseline import main
    from seqpolicy.training.baseline import BaselineConfig, train_baseline

    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "step_0000100.zip").write_bytes(b"old")
    (run / "run.json").write_text(json.dumps({"status": "finished", "steps": 100, "checkpoints": []}))
    argv = ["train", "--algo", "td3", "--env", TOY_ID, "--steps", "120", "--checkpoint-every", "60",
            "--eval-episodes", "1", "--set", "learning_starts=50", "--set", "net_arch=[16, 16]", "--out", str(run),
            "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and (f"{run} already holds a run: run.json (finished, 100 steps), checkpoints/ (1). "
                                "Nothing was changed: add --overwrite") in err, err
    assert "--resume" not in err  # a baseline run does not resume
    with pytest.raises(FileExistsError, match="overwrite=True"):
        train_baseline(BaselineConfig(env_id=TOY_ID, steps=10), run)
    assert main([*argv, "--overwrite"]) == 0
    assert "overwrite: deleting run.json (finished, 100 steps), checkpoints/ (1)" in capsys.readouterr().err
    assert sorted(p.name for p in (run / "checkpoints").glob("*.zip")) == ["step_0000060.zip", "step_0000120.zip"]
