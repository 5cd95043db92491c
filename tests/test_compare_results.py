"""benchmarks/compare_results.py: episodes are paired by seed, and the paired CI is the bootstrap of differences."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from seqpolicy.evaluation.evaluate import _result
from seqpolicy.evaluation.scores import bootstrap_ci

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "compare_results.py"


@pytest.fixture(scope="module")
def cr():
    spec = importlib.util.spec_from_file_location("compare_results", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _write(path: Path, seed: int, returns: list[float]) -> Path:
    _result("Walker2d-v4", "test", None, seed, returns, [100] * len(returns), 1, "none", 0.0, {}).save_json(path)
    return path


def test_pairs_by_seed_across_files(cr, tmp_path):
    rng = np.random.default_rng(0)
    a_ret, b_ret = rng.normal(1000, 300, 20), rng.normal(950, 300, 20)
    a = cr.returns_by_seed([_write(tmp_path / "a1.json", 0, list(a_ret[:10])),
                            _write(tmp_path / "a2.json", 10, list(a_ret[10:]))])
    # B ran seeds 5-24: only 5-19 are shared, and B's files come in another order.
    b = cr.returns_by_seed([_write(tmp_path / "b2.json", 15, list(b_ret[10:])),
                            _write(tmp_path / "b1.json", 5, list(b_ret[:10]))])
    c = cr.paired_comparison(a, b, chunk=5)
    assert c["seeds"] == list(range(5, 20)) and c["only_a"] == list(range(5)) and c["only_b"] == list(range(20, 25))
    diff = a_ret[5:20] - b_ret[:15]
    assert c["difference"] == pytest.approx(diff.mean())
    assert c["mean_a"] == pytest.approx(a_ret[5:20].mean()) and c["mean_b"] == pytest.approx(b_ret[:15].mean())
    assert c["difference_ci95"] == bootstrap_ci(diff, seed=0)
    assert [ch["seeds"] for ch in c["chunks"]] == [[5, 9], [10, 14], [15, 19]]
    assert c["chunks"][1]["mean_a"] == pytest.approx(a_ret[10:15].mean())


def test_pairing_narrows_the_interval(cr):
    # Shared start states: B is A minus 50 plus small noise, so the paired CI excludes 0 although the two
    # separate CIs overlap widely.
    rng = np.random.default_rng(1)
    a_ret = rng.normal(1000, 300, 40)
    b_ret = a_ret - 50 + rng.normal(0, 10, 40)
    c = cr.paired_comparison(dict(enumerate(a_ret)), dict(enumerate(b_ret)))
    lo, hi = c["difference_ci95"]
    assert 0 < lo < 50 < hi
    a_lo, a_hi = bootstrap_ci(a_ret)
    assert a_lo < b_ret.mean() < a_hi


def test_errors(cr, tmp_path):
    with pytest.raises(ValueError, match="share no seed"):
        cr.paired_comparison({0: 1.0}, {1: 2.0})
    one = _write(tmp_path / "one.json", 0, [1.0, 2.0])
    other = _write(tmp_path / "other.json", 1, [5.0])
    with pytest.raises(ValueError, match="seed 1 appears twice"):
        cr.returns_by_seed([one, other])
    assert cr.returns_by_seed([one, one]) == {0: 1.0, 1: 2.0}  # the same file twice is harmless
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(SystemExit):
        cr.main(["--a", str(bad), "--b", str(one)])


def test_cli(cr, tmp_path, capsys):
    a = _write(tmp_path / "a.json", 0, [10.0, 20.0, 30.0, 40.0])
    b = _write(tmp_path / "b.json", 0, [5.0, 25.0, 20.0, 30.0])
    out = tmp_path / "c.json"
    assert cr.main(["--a", str(a), "--a-name", "new", "--b", str(b), "--b-name", "old", "--chunk", "2",
                    "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "new leads 1 of 2 chunks" in text and "difference +5.0" in text
    assert '"difference": 5.0' in out.read_text()
