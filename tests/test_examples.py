"""Every example runs (on a tiny budget, writing only under tmp_path)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_quickstart_runs(tmp_path):
    out = tmp_path / "agent"
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "quickstart.py"), "--steps", "20", "--out", str(out),
                           "--episodes", "2"], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "DT return over 2 episodes" in proc.stdout
    assert (out / "agent.json").is_file() and (out / "model.safetensors").is_file()
