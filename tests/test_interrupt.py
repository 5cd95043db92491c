"""Nothing lost: Ctrl-C (SIGINT) or SIGTERM finishes the step in progress, checkpoints the step reached (also
when no periodic checkpoint was due, and without harm when one was being written), says what it saved, and
--resume then ends exactly where an uninterrupted run of the same seed ends."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time

import pytest
import torch
from conftest import TOY_ID

import seqpolicy
from seqpolicy.training.common import TrainingInterrupted, TrainingRun

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: small models on a shared 2-core machine

# the smallest model of each trainer, with dropout on (so the resumed random states matter); no periodic
# evaluation and no periodic checkpoint (checkpoint_every=0: only at the end), as in the reported run
TINY = {"dt": dict(context_length=4, hidden_size=16, n_layer=1, batch_size=8, warmup_steps=3),
        "tt": dict(n_embd=16, n_layer=1, batch_size=4, seq_transitions=2),
        "bc": dict(hidden_size=16, batch_size=8)}


@pytest.fixture
def sigterm_raises():
    """SIGTERM raises KeyboardInterrupt here instead of ending pytest, so a trainer that does not handle it fails
    the test rather than killing the session."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    yield
    signal.signal(signal.SIGTERM, previous)


def train(trainer: str, data, run_dir, **kw):
    fn = {"dt": seqpolicy.train_dt, "tt": seqpolicy.train_tt, "bc": seqpolicy.train_bc}[trainer]
    settings = {"eval_every": 0, "checkpoint_every": 0, "log_every": 1, "seed": 3, **TINY[trainer], **kw}
    return fn(data, env_id=TOY_ID, run_dir=run_dir, device="cpu", progress=False, **settings)


def weights(agent) -> dict[str, torch.Tensor]:
    module = next(m for m in vars(agent).values() if isinstance(m, torch.nn.Module))
    return {k: v.clone() for k, v in module.state_dict().items()}


def signal_at_step(monkeypatch, signum: int, step: int) -> None:
    """Deliver ``signum`` to this process while training step ``step`` runs (the way Ctrl-C lands mid-step)."""
    loop = TrainingRun.loop

    def loop_with_signal(self, train_step, **kw):
        def one_step():
            if self.step + 1 == step:
                os.kill(os.getpid(), signum)
            return train_step()

        return loop(self, one_step, **kw)

    monkeypatch.setattr(TrainingRun, "loop", loop_with_signal)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("trainer", ["dt", "tt", "bc"])
def test_a_signal_checkpoints_the_step_reached_and_resume_is_exact(trainer, signum, toy_data, tmp_path, monkeypatch,
                                                                  sigterm_raises):
    handler_before = signal.getsignal(signal.SIGINT)  # SIG_IGN when pytest runs in a background job (nohup ... &)
    straight = weights(train(trainer, toy_data, tmp_path / "straight", max_steps=10))

    signal_at_step(monkeypatch, signum, 6)
    with pytest.raises(KeyboardInterrupt) as stopped:
        train(trainer, toy_data, tmp_path / "run", max_steps=10)
    monkeypatch.undo()
    assert isinstance(stopped.value, TrainingInterrupted), repr(stopped.value)
    run = tmp_path / "run"
    e = stopped.value
    assert (e.signum, e.step, e.checkpoint, e.exit_code) == (signum, 6, run / "checkpoint", 128 + signum)
    assert f"at step 6 and saved a checkpoint of it to {run / 'checkpoint'}" in str(e)
    assert json.loads((run / "checkpoint" / "trainer.json").read_text())["step"] == 6  # step 6 finished
    assert not (run / "agent").exists() and signal.getsignal(signal.SIGINT) is handler_before  # restored

    resumed = weights(train(trainer, toy_data, run, max_steps=10, resume=True))
    assert straight.keys() == resumed.keys() and all(torch.equal(straight[k], resumed[k]) for k in straight)


def test_a_signal_while_a_checkpoint_is_written_waits_for_it(toy_data, tmp_path, monkeypatch):
    """Ctrl-C in the middle of a periodic checkpoint's write: the write completes (not cut short, not written
    twice) and the run stops at that step, resumable exactly."""
    import seqpolicy.training.run as run_module

    straight = weights(train("dt", toy_data, tmp_path / "straight", max_steps=8))
    save, writes = run_module.save_checkpoint, []

    def save_with_ctrl_c(run_dir, write_agent, *args, **kw):
        def write_agent_with_ctrl_c(folder):
            os.kill(os.getpid(), signal.SIGINT)  # arrives once the temporary folder exists, before the weights
            return write_agent(folder)

        writes.append(args[2])  # the step
        return save(run_dir, write_agent_with_ctrl_c, *args, **kw)

    monkeypatch.setattr(run_module, "save_checkpoint", save_with_ctrl_c)
    with pytest.raises(KeyboardInterrupt) as stopped:
        train("dt", toy_data, tmp_path / "run", max_steps=8, checkpoint_every=3)
    monkeypatch.undo()
    assert isinstance(stopped.value, TrainingInterrupted) and stopped.value.step == 3, repr(stopped.value)
    assert writes == [3] and not list((tmp_path / "run").glob(".checkpoint*"))
    assert json.loads((tmp_path / "run" / "checkpoint" / "trainer.json").read_text())["step"] == 3
    resumed = weights(train("dt", toy_data, tmp_path / "run", max_steps=8, resume=True, checkpoint_every=3))
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)


def logged_steps(run) -> list[int]:
    lines = (run / "log.csv").read_text().splitlines()[1:] if (run / "log.csv").is_file() else []
    return [int(line.split(",")[0]) for line in lines if line]


def test_cli_killed_with_sigterm_says_what_it_saved_and_resumes_byte_identical(tmp_path):
    """The reported case: seqpolicy-train stopped from outside with no checkpoint due (checkpoint_every 0). It
    exits with status 143 and one line naming the step, the checkpoint and the command to continue, which (given
    a step budget) ends with the same weights, byte for byte, as one uninterrupted run."""
    from seqpolicy.cli.train import main

    run = tmp_path / "run"
    common = ["--dataset", "pointreach-mixed", "--env", TOY_ID, "--log-every", "1", "--eval-every", "0",
              "--checkpoint-every", "0", "--device", "cpu", "--hidden-size", "16", "--batch-size", "8", "--seed", "3"]
    cmd = [sys.executable, "-m", "seqpolicy.cli.train", "bc", *common, "--steps", "1000000", "--out", str(run),
           "--threads", "1", "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while len(logged_steps(run)) < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 143, err[-3000:]
    step = json.loads((run / "checkpoint" / "trainer.json").read_text())["step"]
    assert step >= 2 and logged_steps(run)[-1] == step and not (run / "agent").exists()
    line = err.strip().splitlines()[-1]
    command = f"seqpolicy-train bc --dataset pointreach-mixed --env {TOY_ID} --out {run} --resume --threads 1"
    assert line == (f"seqpolicy-train: terminated (SIGTERM) at step {step}: saved a checkpoint of step {step} to "
                    f"{run / 'checkpoint'}; continue with: {command}"), err[-3000:]

    assert main([*shlex.split(command)[1:], "--steps", str(step + 3), "--quiet"]) == 0
    assert main(["bc", *common, "--steps", str(step + 3), "--out", str(tmp_path / "straight"), "--quiet"]) == 0
    resumed, straight = (p / "agent" / "model.safetensors" for p in (run, tmp_path / "straight"))
    assert resumed.read_bytes() == straight.read_bytes()
    assert logged_steps(run) == list(range(1, step + 4))  # each step logged once


def test_baseline_stopped_by_ctrl_c_exits_non_zero_and_says_what_it_saved(tmp_path, capsys, monkeypatch):
    """seqpolicy-baseline already stops on a signal and saves final.zip; it now says so and exits 130, not 0
    as if the run had finished."""
    pytest.importorskip("stable_baselines3")
    import seqpolicy.training.baseline as baseline
    from seqpolicy.cli.baseline import main

    evaluate, calls = baseline.evaluate_sb3, []

    def evaluate_then_ctrl_c(*args, **kw):  # Ctrl-C right after the first checkpoint's evaluation
        returns = evaluate(*args, **kw)
        if not calls:
            os.kill(os.getpid(), signal.SIGINT)
        calls.append(1)
        return returns

    monkeypatch.setattr(baseline, "evaluate_sb3", evaluate_then_ctrl_c)
    run = tmp_path / "run"
    code = main(["train", "--algo", "td3", "--env", TOY_ID, "--steps", "1000", "--checkpoint-every", "50",
                 "--eval-episodes", "1", "--set", "learning_starts=20", "--set", "net_arch=[16, 16]", "--out",
                 str(run), "--no-progress"])
    err = capsys.readouterr().err
    final = json.loads((run / "final.json").read_text())
    assert code == 130 and final["status"] == "interrupted" and final["step"] < 1000, (code, err)
    assert err.strip().splitlines()[-1] == (
        f"seqpolicy-baseline: stopped by SIGINT at step {final['step']}: saved {run / 'final.zip'} (step "
        f"{final['step']}) and its card final.json; a baseline run does not resume (train it again with "
        "--overwrite, or into another --out)")
