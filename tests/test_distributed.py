"""Training under torchrun: 2 CPU processes (gloo) train one model, only rank 0 writes, resume is exact, and a
run without torchrun has no trace of any of it.

The torchrun tests start ``python -m torch.distributed.run --standalone --nproc_per_node 2`` around
``seqpolicy-train`` (one torch thread per process: the CI machine may have 2 cores).
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import LEARNING_BAR, TOY_ID
from safetensors.torch import load_file

import seqpolicy
from seqpolicy.training import distributed

TINY = ["--preset", "pointreach", "--hidden-size", "16", "--n-layer", "1", "--batch-size", "8", "--eval-every", "0",
        "--log-every", "5", "--device", "cpu", "--precision", "fp32"]


def torchrun(*args: str, cwd, timeout: int = 300) -> subprocess.CompletedProcess:
    """``seqpolicy-train ARGS`` under torchrun with 2 CPU processes; fails the test on a non-zero exit."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "seqpolicy.cli.train", *args, "--threads", "1", "--quiet"]
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def log_rows(run) -> list[dict[str, str]]:
    with open(run / "log.csv") as f:
        return list(csv.DictReader(f))


def test_without_torchrun_nothing_is_distributed(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    dist = distributed.setup(torch.device("cpu"))
    assert (dist.rank, dist.world_size, dist.enabled, dist.is_main) == (0, 1, False, True)
    assert not torch.distributed.is_initialized()
    module = torch.nn.Linear(2, 2)
    assert dist.wrap(module) is module
    call = module.forward
    assert dist.wrap(module, call, find_unused=True) is call
    with dist.sync_gradients(module, last=False):  # nothing to skip
        pass
    value = torch.tensor(3.0)
    assert dist.mean(value) is value and dist.random_states(None) == {}
    torch.manual_seed(5)
    before = torch.get_rng_state()
    gen = dist.sampling_generator(7)
    assert torch.equal(gen.get_state(), torch.Generator().manual_seed(7).get_state())
    assert torch.equal(torch.get_rng_state(), before)  # dropout's RNG untouched
    dist.barrier()
    dist.close()


def test_a_plain_run_records_nothing_distributed(toy_data, tmp_path):
    agent = seqpolicy.train_dt(toy_data, env_id=TOY_ID, max_steps=3, context_length=4, hidden_size=16, n_layer=1,
                               batch_size=8, eval_every=0, device="cpu", progress=False, run_dir=tmp_path)
    assert "world_size" not in agent.info
    state = json.loads((tmp_path / "checkpoint" / "trainer.json").read_text())
    assert "world_size" not in state
    tensors = load_file(str(tmp_path / "checkpoint" / "trainer.safetensors"))
    assert {"generator_state", "torch_rng_state"} <= set(tensors)
    assert not [k for k in tensors if k.startswith("rank")]


def test_a_torchrun_process_of_the_cli_leaves_without_the_interpreter_teardown(monkeypatch, tmp_path, capsys):
    """Under torchrun, seqpolicy-train ends with os._exit(status) (gloo can abort the teardown; see
    distributed.leave_process); without torchrun it returns the status as any command does."""
    from seqpolicy.cli import train as cli

    class Left(Exception):
        pass

    def exit_now(code):
        raise Left(code)

    monkeypatch.setattr(os, "_exit", exit_now)
    argv = ["bc", "--dataset", str(tmp_path / "missing"), "--env", TOY_ID, "--out", str(tmp_path / "run")]
    for name in ("RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert cli.main(argv) == 2  # a user error: its status, returned
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(Left) as left:
        cli.main(argv)
    assert left.value.args == (2,)  # the same status, through os._exit
    assert capsys.readouterr().err.count("error:") == 2


@pytest.mark.parametrize("device", ["mps", "cuda:1"])
def test_torchrun_refuses_a_device_it_cannot_share(monkeypatch, device):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    with pytest.raises(ValueError, match="under torchrun.*Pass --device"):
        distributed.setup(torch.device(device))


def test_torchrun_resume_continues_exactly(tmp_path, capsys):
    """2 processes: 20 steps straight equal 10 steps, then --resume to 20 (weights and logged losses); a run
    resumed by one process from their checkpoint says it is not an exact continuation."""
    from seqpolicy.cli.train import main

    data = ["dt", "--dataset", "pointreach-mixed"]
    torchrun(*data, "--out", "straight", "--steps", "20", "--checkpoint-every", "10", *TINY, cwd=tmp_path)
    torchrun(*data, "--out", "resumed", "--steps", "10", "--checkpoint-every", "10", *TINY, cwd=tmp_path)
    torchrun(*data, "--out", "resumed", "--steps", "20", "--resume", cwd=tmp_path)

    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    a, b = (load_file(str(run / "agent" / "model.safetensors")) for run in (straight, resumed))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    losses = [[(r["step"], r["train/loss"], r["train/lr"]) for r in log_rows(run)] for run in (straight, resumed)]
    assert losses[0] == losses[1] and [step for step, *_ in losses[1]] == ["5", "10", "15", "20"]
    state = json.loads((resumed / "checkpoint" / "trainer.json").read_text())
    assert state["world_size"] == 2 and state["step"] == 20
    assert "rank1.generator_state" in load_file(str(resumed / "checkpoint" / "trainer.safetensors"))

    assert main([*data, "--out", str(resumed), "--steps", "22", "--resume", "--quiet"]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert ("written by 2 process(es), this run has 1: weights, optimizer and the batches of rank 0 continue, and "
            "a step learns from 8 samples instead of 16. Not an exact continuation") in err
    info = json.loads((resumed / "agent" / "agent.json").read_text())["info"]
    assert info["train_steps"] == 22 and "world_size" not in info


def test_torchrun_averages_the_ranks_gradients(tmp_path):
    """A step under torchrun learns from both ranks' batches. Rank 0 alone is a one-process run with the same seed
    (the same init, batch generator ``seed + 0`` and, with no dropout, nothing else random), so without the
    gradients' all-reduce the two runs end with equal weights bit for bit: checked when this test was written, by
    making ``Distributed.wrap`` return the bare call under torchrun (0 of 31 tensors differed; with DDP, 26)."""
    from seqpolicy.cli.train import main

    args = ["dt", "--dataset", "pointreach-mixed", "--steps", "3", "--checkpoint-every", "0", *TINY, "--dropout", "0"]
    torchrun(*args, "--out", "two", cwd=tmp_path)
    assert main([*args, "--out", str(tmp_path / "one"), "--threads", "1", "--quiet"]) == 0
    two, one = (load_file(str(tmp_path / run / "agent" / "model.safetensors")) for run in ("two", "one"))
    assert two.keys() == one.keys()
    changed = [k for k in two if not torch.equal(two[k], one[k])]
    assert len(changed) >= len(two) // 2, changed  # every tensor with a gradient: not only the embeddings


def test_torchrun_stops_on_ctrl_c_with_rank_0s_checkpoint_and_resumes(tmp_path):
    """Ctrl-C to torchrun, which forwards it to both processes: they agree on a step (a logging step), rank 0
    checkpoints it with both ranks' random states and reports it once, every process exits promptly (no rank waits
    forever at a collective), and --resume continues from there."""
    import signal
    import time

    env = {**os.environ, "OMP_NUM_THREADS": "1", "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m",
           "seqpolicy.cli.train", "dt", "--dataset", "pointreach-mixed", "--out", "run", "--steps", "1000000",
           "--checkpoint-every", "0", *TINY, "--threads", "1", "--quiet"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None and not (
                (run / "log.csv").is_file() and len(log_rows(run)) >= 2):
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)  # the 30 s torchrun gives its processes, and some
    finally:
        proc.kill()
    assert proc.returncode != 0
    state = json.loads((run / "checkpoint" / "trainer.json").read_text())
    step = state["step"]
    assert step >= 10 and step % 5 == 0 and state["world_size"] == 2, err[-3000:]  # TINY logs every 5 steps
    assert "rank1.generator_state" in load_file(str(run / "checkpoint" / "trainer.safetensors"))
    assert err.count(f"seqpolicy-train: interrupted at step {step}: saved a checkpoint of step {step}") == 1, err
    assert "exitcode: -" not in err  # no process died of a signal or an abort

    torchrun("dt", "--dataset", "pointreach-mixed", "--out", "run", "--steps", str(step + 5), "--resume",
             cwd=tmp_path)
    assert json.loads((run / "agent" / "agent.json").read_text())["info"]["train_steps"] == step + 5
    assert [int(r["step"]) for r in log_rows(run) if r["train/loss"]] == list(range(5, step + 6, 5))


@pytest.mark.slow  # two torchrun launches, ~10 s each
@pytest.mark.parametrize("model", ["tt", "bc"])
def test_torchrun_trains_tt_and_bc_with_one_writer(tmp_path, model):
    small = ["--n-embd", "16", "--n-layer", "1", "--batch-size", "8"] if model == "tt" else ["--hidden-size", "16"]
    done = torchrun(model, "--dataset", "pointreach-mixed", "--env", TOY_ID, "--preset", "pointreach", "--out", "run",
                    "--steps", "10", "--eval-every", "5", "--eval-episodes", "2", "--checkpoint-every", "5",
                    "--log-every", "5", "--device", "cpu", *small, cwd=tmp_path)
    run = tmp_path / "run"
    assert done.stdout.count("2 processes (torchrun, cpu)") == 1 and done.stdout.count("agent saved to") == 1
    assert sorted(p.name for p in run.iterdir()) == ["agent", "checkpoint", "log.csv"]
    assert [(r["step"], bool(r["train/loss"])) for r in log_rows(run)] == [("5", True), ("5", False), ("10", True),
                                                                           ("10", False)]
    assert json.loads((run / "agent" / "agent.json").read_text())["info"]["world_size"] == 2


@pytest.mark.slow
def test_torchrun_dt_learns_pointreach_to_the_bar(tmp_path):
    """The learning test's bar, trained by 2 processes of 1500 steps each (batch 64 per process, 128 per step), in
    bf16 autocast: the DT's only bf16 learning test as well (tests/test_dt_learning.py trains it in fp32)."""
    from seqpolicy.evaluation.evaluate import evaluate
    from seqpolicy.toy import expert_returns

    done = torchrun("dt", "--dataset", "pointreach-mixed", "--env", TOY_ID, "--preset", "pointreach", "--out", "run",
                    "--device", "cpu", "--precision", "bf16", cwd=tmp_path, timeout=900)
    run = tmp_path / "run"
    assert done.stdout.count("2 processes (torchrun, cpu); batch_size 64 per process, an effective batch of 128") == 1
    assert done.stdout.count("agent saved to") == 1
    assert sorted(p.name for p in run.iterdir()) == ["agent", "checkpoint", "log.csv"]
    steps = [r["step"] for r in log_rows(run) if r["train/loss"]]
    assert steps == [str(s) for s in range(100, 1501, 100)]  # one writer: each logged step once
    assert [r["step"] for r in log_rows(run) if r["eval/return"]] == ["500", "1000", "1500"]

    agent = seqpolicy.load_agent(run / "agent")
    assert agent.info["world_size"] == 2 and agent.info["train_steps"] == 1500 and agent.info["precision"] == "bf16"
    returns = evaluate(agent, TOY_ID, n_episodes=20, seed=0).returns
    expert = expert_returns(20, seed=0)
    print(f"DT (2 processes) {np.mean(returns):.2f} vs expert {expert.mean():.2f} "
          f"({np.mean(returns) / expert.mean():.1%})")
    assert np.mean(returns) >= LEARNING_BAR["dt"] * expert.mean()
