"""The Python examples of the README and docs/ run as written (from a checkout, in a temporary folder), except
those that need files a user makes first or downloads, which are listed here with the reason."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BLOCKS = [block for page in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
          for block in re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.S)]

NOT_RUN = {  # a phrase of the block -> why this test does not run it
    "DataCollector(": "needs minari[create] (jax), not in the test extra",
    'TrajectoryTransformerAgent.load("runs/hopper-tt/agent"': "needs a TT the reader trained first",
    "path/to/decision-transformer-gym-hopper-medium": "needs a downloaded Hugging Face checkpoint",
}


def _runnable() -> list[str]:
    return [b for b in BLOCKS if not any(phrase in b for phrase in NOT_RUN)]


def test_every_python_block_is_run_or_says_why_not():
    assert len(BLOCKS) >= 5
    for phrase in NOT_RUN:
        assert sum(phrase in b for b in BLOCKS) == 1, f"no README or docs/ block (or more than one) holds {phrase!r}"
    assert len(_runnable()) == len(BLOCKS) - len(NOT_RUN)


@pytest.mark.parametrize("index", range(len(_runnable())))
def test_readme_python_block_runs_as_written(index, tmp_path):
    pytest.importorskip("stable_baselines3")
    pytest.importorskip("transformers")
    block = _runnable()[index]
    # Paths in the README are relative to a checkout; the block runs in tmp_path, so they point back to it.
    code = block.replace('"envs/', f'"{REPO.as_posix()}/envs/')
    script = tmp_path / "block.py"
    script.write_text("import warnings\nwarnings.filterwarnings('ignore')\n" + code)
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "MUJOCO_GL": "egl", "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, f"README/docs block {index} failed:\n{block}\n{proc.stderr[-3000:]}"
