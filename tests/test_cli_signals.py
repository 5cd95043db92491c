"""Stopping a command with SIGTERM (a kill, a job scheduler's time limit) cleans up as Ctrl-C does: no partial
file is left, finished results are kept, one line says what happened, and the exit status is 143."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import TOY_ID, make_dt_agent

pytest.importorskip("imageio_ffmpeg", reason="the recording test needs the video extra: pip install -e .[video]")

READY = "READY-FOR-SIGTERM"


def run_until_ready_then_terminate(cli: str, argv: list[str], hook: str, cwd: Path,
                                   check: Callable[[], None] = lambda: None) -> tuple[int, str, str]:
    """Run ``seqpolicy-<cli> argv`` in a child process in which ``hook`` (Python source) has patched the point
    to stop at: the hook prints ``READY`` and sleeps. Then run ``check`` (on what the test stops in the middle
    of) and send SIGTERM; return exit status, stdout and stderr."""
    script = textwrap.dedent(hook) + textwrap.dedent(f"""
        import sys
        from seqpolicy.cli.{cli} import main
        sys.exit(main({argv!r}))
    """)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    env.pop("SEQPOLICY_DEBUG", None)
    child = subprocess.Popen([sys.executable, "-c", script], cwd=cwd, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    out = []
    try:
        for line in child.stdout:  # the child ends (and this loop with it) if it never gets ready
            out.append(line)
            if line.strip() == READY:
                break
        else:
            raise AssertionError(f"the child ended before getting ready:\n{''.join(out)}{child.stderr.read()}")
        check()
        child.send_signal(signal.SIGTERM)
        rest, err = child.communicate(timeout=120)
    finally:
        child.kill()
        child.wait()
    return child.returncode, "".join(out) + rest, err


def test_sigterm_while_recording_a_video_deletes_it_and_says_so(tmp_path):
    hook = f"""
        import time
        from seqpolicy.evaluation import video

        append = video.VideoWriter.append

        def append_then_wait(self, frame, blank=None):
            append(self, frame, blank)
            if self.frames == 3:  # stop here, once ffmpeg has made the partial file
                deadline = time.monotonic() + 60
                while not any(self.folder.glob(".*.partial-*")) and time.monotonic() < deadline:
                    time.sleep(0.05)
                print("{READY}", flush=True)
                time.sleep(60)

        video.VideoWriter.append = append_then_wait
    """
    videos = tmp_path / "videos"

    def recording() -> None:
        partial = list(videos.glob(".*.partial-*.mp4"))
        assert len(partial) == 1 and list(videos.iterdir()) == partial, list(videos.iterdir())

    code, out, err = run_until_ready_then_terminate(
        "eval", ["--env", TOY_ID, "--agent", "random", "--episodes", "2", "--video-dir", str(videos), "--json",
                 str(tmp_path / "eval.json")], hook, tmp_path, check=recording)
    assert code == 143, err
    assert err.strip().splitlines()[-1] == (f"seqpolicy-eval: terminated (SIGTERM): finished videos are kept in "
                                            f"{videos}/, no partial one is left; {tmp_path / 'eval.json'} was not "
                                            "written")
    assert "Traceback" not in err and "returns per episode" in out  # the scores were printed before
    assert list(videos.iterdir()) == [] and not (tmp_path / "eval.json").exists()


def test_sigterm_while_comparing_keeps_the_agents_evaluated_before(tmp_path, toy_env):
    make_dt_agent(toy_env).save(tmp_path / "dt")
    hook = f"""
        import time
        from seqpolicy.evaluation import evaluate as module

        evaluate, calls = module.evaluate, []

        def evaluate_or_wait(*args, **kwargs):
            calls.append(1)
            if len(calls) == 2:  # the second agent
                print("{READY}", flush=True)
                time.sleep(60)
            return evaluate(*args, **kwargs)

        module.evaluate = evaluate_or_wait
    """
    out_dir = tmp_path / "cmp"
    code, _, err = run_until_ready_then_terminate(
        "compare", ["--env", TOY_ID, "--agents", "random", str(tmp_path / "dt"), "--episodes", "2", "--out",
                    str(out_dir)], hook, tmp_path)
    assert code == 143, err
    assert err.strip().splitlines()[-1] == (f"seqpolicy-compare: terminated (SIGTERM): the results of 1 agent(s) "
                                            f"evaluated to the end are saved in {out_dir}; add --out "
                                            f"{out_dir} --resume to evaluate the rest")
    assert [p.name for p in out_dir.iterdir()] == ["random.json"]  # whole, nothing partial
    assert len(json.loads((out_dir / "random.json").read_text())["returns"]) == 2
    assert not (out_dir / "comparison.json").exists()


def test_ctrl_c_and_sigterm_lines_statuses_and_the_handler_put_back(capsys):
    from seqpolicy.cli._common import Terminated, run_cli

    def stopped(error: type[BaseException]):
        def body() -> int:
            assert signal.getsignal(signal.SIGTERM) is not before  # SIGTERM is caught while the command runs
            raise error
        return body

    before = signal.getsignal(signal.SIGTERM)
    assert run_cli("prog", stopped(KeyboardInterrupt), on_stop=lambda: "kept x") == 130
    assert run_cli("prog", stopped(Terminated), on_stop=lambda: None) == 143
    assert capsys.readouterr().err.splitlines() == ["prog: interrupted: kept x", "prog: terminated (SIGTERM)"]
    assert signal.getsignal(signal.SIGTERM) is before
