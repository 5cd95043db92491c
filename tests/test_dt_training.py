"""train_dt and seqpolicy-train: reproducibility, resume, crash-safe checkpoints, CLI."""

from __future__ import annotations

import csv
import itertools

import numpy as np
import pytest
import torch
from conftest import TOY_ID

import seqpolicy
from seqpolicy.agents.dt import DecisionTransformerAgent
from seqpolicy.training import common

TINY = dict(context_length=4, hidden_size=16, n_layer=1, n_head=1, batch_size=8, warmup_steps=5,
            learning_rate=1e-3, return_scale=50.0, eval_every=0, device="cpu", progress=False)


def _weights(agent):
    return {k: v.clone() for k, v in agent.model.state_dict().items()}


def _same(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


def test_same_seed_same_weights_other_seed_differs(toy_data):
    a = _weights(seqpolicy.train_dt(toy_data, env_id=TOY_ID, max_steps=15, seed=1, **TINY))
    b = _weights(seqpolicy.train_dt(toy_data, env_id=TOY_ID, max_steps=15, seed=1, **TINY))
    c = _weights(seqpolicy.train_dt(toy_data, env_id=TOY_ID, max_steps=15, seed=2, **TINY))
    assert _same(a, b) and not _same(a, c)


def test_resume_continues_exactly(toy_data, tmp_path):
    straight = seqpolicy.train_dt(toy_data, env_id=TOY_ID, max_steps=20, seed=0, run_dir=tmp_path / "a", **TINY)
    seqpolicy.train_dt(toy_data, env_id=TOY_ID, max_steps=10, seed=0, run_dir=tmp_path / "b", **TINY)
    resumed = seqpolicy.train_dt(toy_data, env_id=TOY_ID, max_steps=20, seed=0, run_dir=tmp_path / "b",
                                 resume=True, **TINY)
    assert _same(_weights(straight), _weights(resumed))
    with open(tmp_path / "b" / "log.csv") as f:
        steps = [int(r["step"]) for r in csv.DictReader(f)]
    assert steps == sorted(set(steps)) and steps[-1] == 20


def test_resume_refuses_changed_recipe(toy_data, tmp_path):
    seqpolicy.train_dt(toy_data, env_id=TOY_ID, max_steps=5, run_dir=tmp_path, **TINY)
    with pytest.raises(ValueError, match="different settings than the checkpoint.*learning_rate"):
        seqpolicy.train_dt(toy_data, env_id=TOY_ID, max_steps=10, run_dir=tmp_path, resume=True,
                           **{**TINY, "learning_rate": 5e-4})
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        seqpolicy.train_dt(toy_data, env_id=TOY_ID, max_steps=5, run_dir=tmp_path / "empty", resume=True, **TINY)


def test_keep_best_keeps_the_agent_of_the_best_periodic_evaluation(toy_data, tmp_path, monkeypatch):
    """keep_best writes run_dir/best at the evaluation with the highest return, and a resumed run remembers
    that return (scripted returns 3, 7, 5 then, after resuming, 6, 4: the best stays the step-8 agent)."""
    import seqpolicy.training.trainer as trainer

    returns = iter([3.0, 7.0, 5.0, 6.0, 4.0])
    monkeypatch.setattr(trainer, "eval_metrics", lambda *a, **k: {"eval/return": next(returns)})
    kw = {**TINY, "eval_every": 4, "eval_episodes": 2, "keep_best": True, "checkpoint_every": 4}
    seqpolicy.train_dt(toy_data, env_id=TOY_ID, max_steps=12, seed=0, run_dir=tmp_path, **kw)
    best_before = _weights(DecisionTransformerAgent.load(tmp_path / "best"))
    seqpolicy.train_dt(toy_data, env_id=TOY_ID, max_steps=20, seed=0, run_dir=tmp_path, resume=True, **kw)
    best = DecisionTransformerAgent.load(tmp_path / "best")
    chosen = best.info["selected_by"]
    assert (chosen["step"], chosen["eval/return"], chosen["eval_episodes"], chosen["eval_seed"]) == (8, 7.0, 2, 10_000)
    assert best.info["train_steps"] == 8 and _same(_weights(best), best_before)
    final = DecisionTransformerAgent.load(tmp_path / "agent")
    assert "selected_by" not in final.info and final.info["train_steps"] == 20
    assert not _same(_weights(best), _weights(final))


def test_snapshots_keep_the_agent_at_every_nth_step_across_a_resume(toy_data, tmp_path):
    """snapshot_every=4 keeps snapshots/step-0000004, -08, ... each the agent at that step (its weights equal
    a run stopped there), also after --resume; the final agent's info is not changed by them."""
    kw = {**TINY, "checkpoint_every": 6, "snapshot_every": 4}
    seqpolicy.train_dt(toy_data, env_id=TOY_ID, max_steps=10, seed=0, run_dir=tmp_path, **kw)
    seqpolicy.train_dt(toy_data, env_id=TOY_ID, max_steps=13, seed=0, run_dir=tmp_path, resume=True, **kw)
    names = sorted(p.name for p in (tmp_path / "snapshots").iterdir())
    assert names == ["step-0000004", "step-0000008", "step-0000012"]
    snap = DecisionTransformerAgent.load(tmp_path / "snapshots" / "step-0000008")
    assert snap.info["train_steps"] == 8 and snap.info["train_wall_time_s"] > 0
    stopped = seqpolicy.train_dt(toy_data, env_id=TOY_ID, max_steps=8, seed=0, run_dir=tmp_path / "b",
                                 **{**kw, "snapshot_every": 0})
    assert _same(_weights(snap), _weights(stopped))
    assert not (tmp_path / "b" / "snapshots").exists()
    assert DecisionTransformerAgent.load(tmp_path / "agent").info["train_steps"] == 13


def test_a_crash_while_checkpointing_keeps_the_previous_checkpoint(toy_data, tmp_path):
    agent = seqpolicy.train_dt(toy_data, env_id=TOY_ID, max_steps=5, run_dir=tmp_path, **TINY)
    before = (tmp_path / "checkpoint" / "model.safetensors").read_bytes()
    opt = torch.optim.AdamW(agent.model.parameters())
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)

    def dies_halfway(folder):
        agent.save(folder)
        (folder / "model.safetensors").write_bytes(b"partial")
        raise KeyboardInterrupt  # killed before the checkpoint was complete

    with pytest.raises(KeyboardInterrupt):
        common.save_checkpoint(tmp_path, dies_halfway, opt, sched, 99, {})
    assert (tmp_path / "checkpoint" / "model.safetensors").read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".checkpoint-")]
    DecisionTransformerAgent.load(tmp_path / "checkpoint")  # still loads


def test_cli_trains_evaluates_logs_and_saves(tmp_path, capsys):
    from seqpolicy.cli.train import main

    out = tmp_path / "run"
    code = main(["dt", "--dataset", "pointreach-mixed", "--env", TOY_ID, "--preset", "pointreach", "--out", str(out),
                 "--steps", "20", "--eval-every", "10", "--eval-episodes", "2", "--log-every", "10",
                 "--checkpoint-every", "10", "--device", "cpu", "--quiet"])
    assert code == 0, capsys.readouterr().err
    agent = DecisionTransformerAgent.load(out / "agent")
    assert agent.info["train_steps"] == 20 and agent.env_id == TOY_ID
    with open(out / "log.csv") as f:
        rows = list(csv.DictReader(f))
    evals = [float(r["eval/return"]) for r in rows if r.get("eval/return")]
    assert len(evals) == 2 and all(np.isfinite(evals))
    assert main(["dt", "--dataset", "pointreach-mixed", "--out", str(tmp_path / "x"), "--resume", "--quiet",
                 "--env", TOY_ID]) == 2
    assert "no checkpoint" in capsys.readouterr().err


def test_cli_resume_continues_with_the_checkpoints_settings(tmp_path, capsys):
    """--resume without --preset takes the checkpoint's settings (here the pointreach preset, not the paper's
    default), continues exactly, and a wrong --preset is refused as a settings mismatch before loading weights."""
    from seqpolicy.cli.train import main

    common_args = ["--dataset", "pointreach-mixed", "--env", TOY_ID, "--eval-every", "0", "--checkpoint-every", "5",
                   "--device", "cpu", "--quiet", "--seed", "3"]
    assert main(["dt", *common_args, "--preset", "pointreach", "--out", str(tmp_path / "a"), "--steps", "12"]) == 0
    assert main(["dt", *common_args, "--preset", "pointreach", "--out", str(tmp_path / "b"), "--steps", "5"]) == 0
    assert main(["dt", *common_args, "--preset", "paper", "--out", str(tmp_path / "b"), "--steps", "12",
                 "--resume"]) == 2
    err = capsys.readouterr().err.strip()
    assert "different settings than the checkpoint" in err and "hidden_size" in err and "\n" not in err
    assert main(["dt", *common_args, "--out", str(tmp_path / "b"), "--steps", "12", "--resume"]) == 0
    straight = DecisionTransformerAgent.load(tmp_path / "a" / "agent")
    resumed = DecisionTransformerAgent.load(tmp_path / "b" / "agent")
    assert resumed.info["train_steps"] == 12 and _same(_weights(straight), _weights(resumed))


def test_cli_bad_dataset_is_one_clear_line(tmp_path, capsys):
    from seqpolicy.cli.train import main

    assert main(["dt", "--dataset", str(tmp_path / "missing.hdf5"), "--out", str(tmp_path / "r"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("seqpolicy-train: error:") and "missing.hdf5" in err and "\n" not in err


def test_every_trainer_option_has_help_text():
    """Config fields, inherited RunSettings included, document themselves in seqpolicy-train --help."""
    import dataclasses

    from seqpolicy.cli.train import TRAINERS, _trainer, field_docs

    for name in TRAINERS:
        _, config_cls, _ = _trainer(name)
        docs = field_docs(config_cls)
        assert [f.name for f in dataclasses.fields(config_cls) if not docs.get(f.name)] == [], name


def test_cosine_schedule_decays_to_a_tenth(toy_data, tmp_path):
    for schedule in ("constant", "cosine"):
        seqpolicy.train_dt(toy_data, env_id=TOY_ID, max_steps=30, seed=0, run_dir=tmp_path / schedule, log_every=1,
                           lr_schedule=schedule, **TINY)
        with open(tmp_path / schedule / "log.csv") as f:
            lrs = [float(r["train/lr"]) for r in csv.DictReader(f) if r.get("train/lr")]
        assert len(lrs) == 30 and lrs[4] == pytest.approx(1e-3)  # warm-up done
        if schedule == "constant":
            assert lrs[-1] == pytest.approx(1e-3)
        else:
            assert all(a >= b for a, b in itertools.pairwise(lrs[5:])) and lrs[-1] == pytest.approx(1e-4, rel=0.05)
    with pytest.raises(ValueError, match="lr_schedule must be"):
        seqpolicy.train_dt(toy_data, env_id=TOY_ID, max_steps=2, lr_schedule="step", **TINY)


def test_resume_a_checkpoint_written_before_a_config_field_existed(toy_data, tmp_path):
    """A checkpoint without a newer field (lr_schedule) resumes when the field keeps its default."""
    import json

    seqpolicy.train_dt(toy_data, env_id=TOY_ID, max_steps=5, seed=0, run_dir=tmp_path, **TINY)
    state = tmp_path / "checkpoint" / "trainer.json"
    doc = json.loads(state.read_text())
    del doc["train_config"]["lr_schedule"]
    state.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="lr_schedule"):
        seqpolicy.train_dt(toy_data, env_id=TOY_ID, max_steps=10, seed=0, run_dir=tmp_path, resume=True,
                           lr_schedule="cosine", **TINY)
    seqpolicy.train_dt(toy_data, env_id=TOY_ID, max_steps=10, seed=0, run_dir=tmp_path, resume=True, **TINY)


def test_a_resumed_log_drops_the_repeated_rows_from_the_file_at_once(tmp_path):
    from seqpolicy.training.metrics import MetricLogger

    first = MetricLogger(tmp_path)
    for step in (100, 200, 300):
        first.log(step, {"train/loss": 1.0 / step})
    # stopped without close(); the checkpoint was at step 200, so a resumed run repeats 300
    resumed = MetricLogger(tmp_path)
    resumed.drop_after(200)
    with open(tmp_path / "log.csv") as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == [100, 200]
    resumed.log(300, {"train/loss": 0.5})
    with open(tmp_path / "log.csv") as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == [100, 200, 300]
