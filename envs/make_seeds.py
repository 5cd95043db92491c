"""Training seeds of a zoo agent under the protocol of envs/README.md: train, keep, describe, evaluate.

For each seed N, from the agent's command in ``envs/<EnvId>/manifest.json``::

    python envs/make_seeds.py --env Walker2d-v4 --agent bc --seeds 1 2            # train + card + evaluate
    python envs/make_seeds.py --env Walker2d-v4 --agent dt --seeds 0 1 2 --note "beside an ODT run"
    python envs/make_seeds.py --env Walker2d-v4 --agent bc --seeds 0 --evaluate-only  # the designated seed
    python envs/make_seeds.py --env Walker2d-v4 --agent dt bc --seeds 1 2 --jobs 2   # 4 runs, 2 at a time

1. **train**: the manifest's command with ``--seed N``, ``--out runs/seeds/<env>-<artifact>-<N>`` and the
   protocol's changes: no checkpoint kept by evaluation (``--keep-best false``), a held-out learning curve
   (10 episodes on seeds 10000+ every 2500 steps; nothing is chosen by it), and for a DT the declared
   target of :data:`DT_TARGETS`, the DT paper's per-env one. The budget (``--steps``) is the manifest's.
2. **keep**: the run's final agent -> ``envs/<EnvId>/seeds/<artifact>/<N>/`` with its ``card.json`` (the
   command, dataset and its content sha256, steps, precision, machine, wall time, the files' sha256 and the
   held-out curve). Before training, the local dataset is checked against its committed card: a dataset rebuilt
   on another CPU kind can differ (envs/README.md), and seeds trained on other data are refused. Seed 0 of
   an agent whose designated folder holds final weights already (BC) is that folder: use ``--evaluate-only``.
3. **evaluate**: 100 episodes on the test seeds 0-99, one thread, 10 envs, as every zoo result::

       seqpolicy-eval --env ENV --agent NAME --training-seeds N --episodes 100 --seed 0 --n-envs 10 \\
           --threads 1 --workers 1 --no-video --json envs/<EnvId>/results/seeds/<NAME>-<N>.json

With ``--jobs N`` the (agent, seed) runs, in the order given (agents, then seeds), share N processes, each
taking the next run when it finishes one (one per core: each trains and acts on one thread); each run's output
goes to ``runs/seeds/logs/<env>-<agent>-<seed>.log`` and a failed run does not stop the others.

Then the tables: ``python envs/make_table.py envs/*/results/seeds/*.json --out envs/seeds.md --chart
envs/seeds.png``. A seed whose folder and result exist is skipped (``--overwrite`` redoes it); a training
that was stopped continues with ``--resume`` from its checkpoint when run again.
"""

from __future__ import annotations

import argparse
import csv
import json
import shlex
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from zoo_common import REPO, dataset_name, env_folder, machine, read_manifest, sha256

from seqpolicy.common.artifact import atomic_write_json

DT_TARGETS = {"Hopper-v4": 3600.0, "HalfCheetah-v4": 12000.0, "Walker2d-v4": 5000.0}
"""The declared DT target returns (the DT paper's per-env targets; envs/README.md)."""
CURVE_EVERY = 2500
"""Training steps between held-out evaluations (the Hopper-v4 seeds' cadence since the protocol began)."""
CURVE_EPISODES = 10
TEST = ["--episodes", "100", "--seed", "0", "--n-envs", "10", "--threads", "1", "--workers", "1", "--no-video"]
"""The test evaluation: in one process, as the designated agents' results were made (a TT's episodes can change
with the batches they share, docs/evaluation.md)."""


def _set(words: list[str], flag: str, value: str) -> list[str]:
    """``words`` with ``flag`` set to ``value`` (replaced where present, appended otherwise)."""
    out, i = [], 0
    while i < len(words):
        if words[i] == flag:
            i += 2
            continue
        out.append(words[i])
        i += 1
    return out + [flag, value]


def _get(words: list[str], flag: str) -> str | None:
    return words[words.index(flag) + 1] if flag in words else None


def seed_command(env_id: str, name: str, manifest: dict, seed: int) -> tuple[list[str], Path]:
    """The protocol's training command of seed ``seed`` of agent ``name`` and its run folder."""
    entry = manifest.get("training", {}).get(name)
    if entry is None:
        raise SystemExit(f"{env_id}'s manifest has no training command for {name!r}; it has "
                         f"{sorted(manifest.get('training', {}))}.")
    words = shlex.split(entry["command"])
    artifact = manifest["agents"][name]
    run = Path("runs/seeds") / f"{env_id.lower()}-{artifact}-{seed}"
    words = _set(words, "--out", str(run))
    words = _set(words, "--seed", str(seed))
    trainer = words[1]
    if trainer in ("dt", "odt"):
        words = _set(words, "--target-return", f"{DT_TARGETS[env_id]:g}")
    if "--keep-best" in words or trainer == "dt":
        words = _set(words, "--keep-best", "false")
    steps = _get(words, "--steps")
    if steps is not None and trainer != "tt":
        words = _set(words, "--eval-every", str(min(CURVE_EVERY, int(steps))))
        words = _set(words, "--eval-episodes", str(CURVE_EPISODES))
    return words, run


def check_dataset(env_id: str, dataset_id: str, allow_other: bool) -> dict:
    """The local dataset's content sha256 against its committed card (envs/<EnvId>/datasets/<name>.json): seeds
    are comparable only when trained on the same data, and a dataset rebuilt on another CPU kind can differ
    (envs/README.md). SystemExit on a mismatch unless ``allow_other``."""
    from make_datasets import content_sha256

    from seqpolicy.data.sources import load_trajectories

    card = env_folder(env_id) / "datasets" / f"{dataset_name(dataset_id)}.json"
    want = json.loads(card.read_text()).get("content_sha256") if card.is_file() else None
    got = content_sha256(load_trajectories(dataset_id, env_id))
    if want is not None and got != want and not allow_other:
        raise SystemExit(f"{dataset_id} here (content sha256 {got[:12]}...) is not the data of its card "
                         f"{card.relative_to(REPO)} ({want[:12]}...): a seed trained on it would not be comparable "
                         "with the others. Rebuild it where it matches (envs/README.md: datasets differ between CPU "
                         "kinds), or pass --allow-other-data and say so.")
    return {"content_sha256": got, "matches_card": want is None or got == want}


def curve_record(run: Path, command: str) -> dict:
    """``{"held_out_curve": ...}`` for a card: the run's periodic evaluations (seeds 10000+, the episodes its
    ``--eval-episodes`` asked for), or nothing when the run logged none."""
    points = held_out_curve(run)
    if not points:
        return {}
    episodes = int(_get(shlex.split(command), "--eval-episodes") or CURVE_EPISODES)
    return {"held_out_curve": {"seeds": f"10000-{10000 + episodes - 1} ({episodes} episodes per point; nothing kept "
                                        "by it)", "points": points}}


def held_out_curve(run: Path) -> list[dict]:
    """(step, mean return) of the run's periodic evaluations (log.csv's eval/return)."""
    log = run / "log.csv"
    if not log.is_file():
        return []
    with log.open() as f:
        return [{"step": int(row["step"]), "return": float(row["eval/return"])}
                for row in csv.DictReader(f) if row.get("eval/return")]


def keep(env_id: str, name: str, manifest: dict, seed: int, words: list[str], run: Path, wall: float | None,
         note: str | None, data: dict | None = None) -> Path:
    """Copy the run's final agent into seeds/<artifact>/<seed>/ and write its card."""
    folder = env_folder(env_id)
    artifact = manifest["agents"][name]
    dest = folder / "seeds" / artifact / str(seed)
    agent = REPO / run / "agent"
    if not (agent / "agent.json").is_file():
        raise SystemExit(f"{agent} holds no finished agent: the training did not finish.")
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(agent, dest, ignore=shutil.ignore_patterns("README.md"))
    trainer = json.loads((REPO / run / "trainer.json").read_text()) if (REPO / run / "trainer.json").is_file() \
        else {}
    info = json.loads((dest / "agent.json").read_text()).get("info", {})
    card = {
        "artifact": artifact, "seed": seed,
        "protocol": "final weights (envs/README.md)" + (f"; declared target {DT_TARGETS[env_id]:g}"
                                                        if words[1] in ("dt", "odt") else "; nothing to declare"),
        "command": shlex.join(words),
        "dataset": _get(words, "--dataset"),
        "dataset_content_sha256": (data or {}).get("content_sha256"),
        "dataset_matches_card": (data or {}).get("matches_card"),
        "train_steps": info.get("train_steps", trainer.get("step")),
        "precision": info.get("precision", trainer.get("precision")),
        "trained_on": machine() + ", one thread",
        "train_wall_time_s": round(wall, 3) if wall is not None else info.get("train_wall_time_s"),
        "wall_time_note": note,
        "files": {f.name: {"bytes": f.stat().st_size, "sha256": sha256(f)}
                  for f in sorted(dest.iterdir()) if f.is_file() and f.name != "card.json"},
        **curve_record(REPO / run, shlex.join(words)),
    }
    atomic_write_json(dest / "card.json", card)
    return dest


def evaluate(env_id: str, name: str, seed: int) -> Path:
    out = env_folder(env_id) / "results" / "seeds" / f"{name}-{seed}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = ["seqpolicy-eval", "--env", env_id, "--agent", name, "--training-seeds", str(seed), *TEST,
           "--json", str(out)]
    print("+", shlex.join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=REPO)
    return out


def run_seeds(args: argparse.Namespace, manifest: dict, name: str, seeds: list[int]) -> None:
    """Train, keep and evaluate ``seeds`` of agent ``name`` in this process, one after the other."""
    folder = env_folder(args.env)
    for seed in seeds:
        words, run = seed_command(args.env, name, manifest, seed)
        if args.dry_run:
            print(shlex.join(words))
            continue
        dest = folder / "seeds" / manifest["agents"][name] / str(seed)
        result = folder / "results" / "seeds" / f"{name}-{seed}.json"
        if not args.evaluate_only:
            if dest.is_dir() and result.is_file() and not args.overwrite:
                print(f"seed {seed}: {dest.relative_to(REPO)} and its result exist (--overwrite redoes them)")
                continue
            data = check_dataset(args.env, _get(words, "--dataset"), args.allow_other_data)
            resume = (REPO / run / "checkpoint").is_dir() and not (REPO / run / "agent" / "agent.json").is_file()
            cmd = words + (["--resume"] if resume else ["--overwrite"] if (REPO / run).exists() else [])
            if not (REPO / run / "agent" / "agent.json").is_file() or args.overwrite:
                print("+", shlex.join(cmd), flush=True)
                start = time.perf_counter()
                subprocess.run(cmd, check=True, cwd=REPO)
                wall = None if resume else time.perf_counter() - start
            else:
                wall = None
            kept = keep(args.env, name, manifest, seed, words, run, wall, args.note, data)
            print(f"seed {seed}: kept {kept.relative_to(REPO)}", flush=True)
        evaluate(args.env, name, seed)


def run_jobs(args: argparse.Namespace, runs: list[tuple[str, int]]) -> int:
    """Each (agent, seed) run as its own ``make_seeds.py`` process, ``args.jobs`` at a time, in order; returns the
    exit status (1 when any run failed: they are listed)."""
    logs = REPO / "runs" / "seeds" / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    flags = [flag for flag, on in (("--evaluate-only", args.evaluate_only), ("--overwrite", args.overwrite),
                                   ("--allow-other-data", args.allow_other_data)) if on]
    flags += ["--note", args.note] if args.note else []
    lock, done, start = threading.Lock(), [], time.perf_counter()

    def one(run: tuple[str, int]) -> int:
        name, seed = run
        log = logs / f"{args.env.lower()}-{name}-{seed}.log"
        cmd = [sys.executable, str(Path(__file__).resolve()), "--env", args.env, "--agent", name,
               "--seeds", str(seed), *flags]
        with lock:
            print(f"start {name} seed {seed} (log: {log.relative_to(REPO)})", flush=True)
        began = time.perf_counter()
        with log.open("w") as out:
            code = subprocess.call(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
        with lock:
            done.append(time.perf_counter() - began)
            elapsed = time.perf_counter() - start
            left = len(runs) - len(done)
            eta = elapsed / len(done) * left
            status = "done" if code == 0 else f"FAILED (exit {code}; see the log)"
            print(f"{name} seed {seed}: {status} in {done[-1]:.0f} s; {len(done)}/{len(runs)} runs, "
                  f"{elapsed / 60:.1f} min so far, about {eta / 60:.0f} min left", flush=True)
        return code

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        codes = list(pool.map(one, runs))
    failed = [f"{name} seed {seed}" for (name, seed), code in zip(runs, codes, strict=True) if code != 0]
    if failed:
        print(f"{len(failed)} of {len(runs)} runs failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    p.add_argument("--env", required=True, help="a zoo env, e.g. Walker2d-v4")
    p.add_argument("--agent", required=True, nargs="+", help="zoo names with a training command, e.g. dt, bc, "
                                                             "dt-medium-expert")
    p.add_argument("--seeds", type=int, nargs="+", required=True, help="training seeds, e.g. 0 1 2")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="runs at a time, each its own process on one thread (default 1; at most one per core)")
    p.add_argument("--evaluate-only", action="store_true",
                   help="only the 100-episode test of seeds already kept (or the designated seed 0)")
    p.add_argument("--dry-run", action="store_true", help="print the training commands and stop")
    p.add_argument("--overwrite", action="store_true", help="redo seeds whose folder and result exist")
    p.add_argument("--allow-other-data", action="store_true",
                   help="train even where the local dataset differs from its committed card (recorded in the card)")
    p.add_argument("--note", default=None, help="what shared the machine, for the card (wall times are speeds "
                                                "only on a quiet core)")
    args = p.parse_args(argv)
    manifest = read_manifest(env_folder(args.env))
    for name in args.agent:
        if name not in manifest.get("agents", {}):
            raise SystemExit(f"{args.env} has no zoo agent {name!r}; it has {sorted(manifest['agents'])}.")
    if any(seed < 0 for seed in args.seeds):
        raise SystemExit(f"--seeds must be >= 0, got {min(args.seeds)}.")
    if args.jobs < 1:
        raise SystemExit(f"--jobs must be at least 1, got {args.jobs}.")
    if args.jobs > 1 and not args.dry_run:
        return run_jobs(args, [(name, seed) for name in args.agent for seed in args.seeds])
    for name in args.agent:
        run_seeds(args, manifest, name, args.seeds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
