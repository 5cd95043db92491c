"""Are two agents (or two settings of one) really different? A paired comparison on the seeds they share.

Each side is one or more evaluation result files (``EvalResult.save_json``'s, ``seqpolicy-eval --json``'s,
``tt_planning.py``'s ``results/*.json``, a zoo's ``results/<agent>.json``, the shards of ``make_agents.py evaluate
--shards``); a side's files are merged by seed, and only the seeds both sides ran are compared, episode against
episode. Pairing removes what the start state adds to the spread, so where an episode's return depends on its seed
the difference of the means has a narrower interval than the two separate CIs suggest::

    R=envs/Walker2d-v4/research/tt-curve/searches/results
    python benchmarks/compare_results.py --a $R/tt-medium_beam8x2-h15-*.json --a-name h15 \\
        --b $R/step-0010000_beam8x2-h10-*.json \\
        --b-name h10 --chunk 10

prints each side's mean over the shared seeds, per chunk of ``--chunk`` consecutive seeds if asked, the mean
difference A - B and its 95% paired bootstrap CI (10000 resamples of the per-seed differences, ``--seed 0``), and
how many chunks A leads. ``--json`` writes the same numbers to a file.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from seqpolicy.evaluation.evaluate import EvalResult
from seqpolicy.evaluation.scores import bootstrap_ci
from seqpolicy.zoo import raise_if_moved


def returns_by_seed(paths: Sequence[str | Path]) -> dict[int, float]:
    """Every episode's return in ``paths``, keyed by its seed.

    Raises:
        ValueError: a file is not an evaluation result, or two files hold the same seed with different returns.
        seqpolicy.zoo.ZooError: a file of the zoo's layout before, which moved (the message names where to).
    """
    out: dict[int, float] = {}
    for path in paths:
        raise_if_moved(path)  # a zoo file of the layout before, e.g. envs/<EnvId>/results/results/<agent>.json
        result = EvalResult.load_json(path)
        for seed, ret in zip(result.seeds, result.returns, strict=True):
            if seed in out and out[seed] != ret:
                raise ValueError(f"seed {seed} appears twice with different returns ({out[seed]} and {ret}, the "
                                 f"second in {path}): a side must be one setting's episodes.")
            out[int(seed)] = float(ret)
    return out


def paired_comparison(a: dict[int, float], b: dict[int, float], chunk: int | None = None,
                      n_resamples: int = 10_000, seed: int = 0) -> dict:
    """Means of A and B over their shared seeds, A - B with its paired bootstrap 95% CI, and per-chunk means.

    Raises:
        ValueError: the two sides share no seed.
    """
    seeds = sorted(set(a) & set(b))
    if not seeds:
        raise ValueError(f"the two sides share no seed (A: {_span(a)}, B: {_span(b)}): a paired comparison needs "
                         "the same episodes on both sides.")
    xa, xb = np.array([a[s] for s in seeds]), np.array([b[s] for s in seeds])
    diff = xa - xb
    out = {"seeds": seeds, "n": len(seeds), "mean_a": float(xa.mean()), "mean_b": float(xb.mean()),
           "difference": float(diff.mean()), "difference_ci95": bootstrap_ci(diff, n_resamples=n_resamples, seed=seed),
           "only_a": sorted(set(a) - set(b)), "only_b": sorted(set(b) - set(a)), "chunks": []}
    if chunk:
        for start in range(0, len(seeds), chunk):
            part = slice(start, start + chunk)
            out["chunks"].append({"seeds": [seeds[part][0], seeds[part][-1]], "n": len(seeds[part]),
                                  "mean_a": float(xa[part].mean()), "mean_b": float(xb[part].mean())})
    return out


def _span(d: dict[int, float]) -> str:
    return f"{len(d)} seeds, {min(d)}-{max(d)}" if d else "no seeds"


def report(c: dict, name_a: str, name_b: str) -> str:
    lines = [f"{c['n']} shared seeds ({c['seeds'][0]}-{c['seeds'][-1]})"]
    if c["only_a"] or c["only_b"]:
        lines.append(f"left out: {len(c['only_a'])} seeds only in {name_a}, {len(c['only_b'])} only in {name_b}")
    for ch in c["chunks"]:
        lines.append(f"  seeds {ch['seeds'][0]}-{ch['seeds'][1]} ({ch['n']}): {name_a} {ch['mean_a']:.1f}  "
                     f"{name_b} {ch['mean_b']:.1f}")
    if c["chunks"]:
        leads = sum(ch["mean_a"] > ch["mean_b"] for ch in c["chunks"])
        lines.append(f"{name_a} leads {leads} of {len(c['chunks'])} chunks")
    lo, hi = c["difference_ci95"]
    lines.append(f"{name_a} {c['mean_a']:.1f}  {name_b} {c['mean_b']:.1f}  difference {c['difference']:+.1f} "
                 f"(paired bootstrap 95% CI {lo:.1f} to {hi:.1f})")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--a", nargs="+", required=True, help="result files of side A (merged by seed)")
    p.add_argument("--b", nargs="+", required=True, help="result files of side B")
    p.add_argument("--a-name", default="A", help="label of side A in the output")
    p.add_argument("--b-name", default="B", help="label of side B")
    p.add_argument("--chunk", type=int, default=None, help="also compare chunks of this many consecutive seeds")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap resampling (default 0)")
    p.add_argument("--json", type=Path, default=None, help="also write the numbers to this file")
    args = p.parse_args(argv)
    if args.chunk is not None and args.chunk < 1:
        p.error(f"--chunk must be >= 1, got {args.chunk}")
    try:
        c = paired_comparison(returns_by_seed(args.a), returns_by_seed(args.b), args.chunk, seed=args.seed)
    except (ValueError, OSError, LookupError) as e:
        p.error(str(e))
    print(report(c, args.a_name, args.b_name))
    if args.json:
        args.json.write_text(json.dumps({"a": args.a, "b": args.b, "a_name": args.a_name, "b_name": args.b_name,
                                         "bootstrap_seed": args.seed, **c}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
