"""Hopper-v4 offline datasets the way D4RL made its MuJoCo ones, on a CPU.

One command (trains the TD3 baseline first when --run holds no finished run, then builds the datasets)::

    python envs/Hopper-v4/make_datasets.py --run runs/hopper-v4-td3 --train-minutes 108

1. ``seqpolicy-baseline train --algo td3 --env Hopper-v4 --keep-replay`` (rl-zoo hyperparameters; TD3 rather
   than D4RL's SAC because it trains faster here: 86 vs 54 env steps/s, one torch thread, 2-core CPU) until
   the step or time budget.
2. expert = the checkpoint with the highest 10-episode evaluation return; medium = the checkpoint before it
   whose evaluation return is closest to a third of the expert's (D4RL: "a policy stopped at about one third
   of expert return").
3. Minari datasets in the local store (``$MINARI_DATASETS_PATH`` or ``~/.minari/datasets``):
   ``seqpolicy/hopper-v4/expert-v0``   --steps transitions of the expert, with N(0, 0.1) action noise
   ``seqpolicy/hopper-v4/medium-v0``   --steps transitions of the medium policy, with N(0, 0.1) action noise
   ``seqpolicy/hopper-v4/medium-replay-v0``  the training replay buffer up to the medium checkpoint
   ``seqpolicy/hopper-v4/medium-expert-v0``  medium + expert, concatenated
4. Cards: ``envs/Hopper-v4/datasets/<name>.json`` and ``envs/Hopper-v4/DATASETS.md`` (command, seed, size,
   return statistics, checksums, wall time, reference scores), and the two policies ``td3-expert.zip`` and
   ``td3-medium.zip`` with their JSON cards, so the datasets can be rebuilt without retraining
   (``--from-zips``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ENV_ID = "Hopper-v4"
NAMESPACE = "seqpolicy/hopper-v4"


def content_sha256(data) -> str:
    """SHA-256 of the dataset's flat arrays (float32/bool bytes): the same for the same data, whatever file."""
    h = hashlib.sha256()
    for k, v in data.to_arrays().items():
        h.update(k.encode())
        h.update(np.ascontiguousarray(v).tobytes())
    return h.hexdigest()


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def evaluate_agent(agent, episodes: int, seed: int) -> dict:
    from seqpolicy.evaluation.evaluate import evaluate

    res = evaluate(agent, ENV_ID, n_episodes=episodes, seed=seed, n_envs=10)
    return {"episodes": res.n_episodes, "seed": seed, "mean": res.mean, "std": res.std, "ci95": list(res.ci95),
            "min": float(np.min(res.returns)), "max": float(np.max(res.returns)),
            "mean_length": float(np.mean(res.lengths)),
            "d4rl_normalized": res.normalized["mean"] if res.normalized else None, "wall_s": round(res.wall_time_s, 1)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", default="runs/hopper-v4-td3", help="baseline run folder (trained here if missing)")
    p.add_argument("--train-minutes", type=float, default=108.0, help="wall-clock budget if training is needed")
    p.add_argument("--train-steps", type=int, default=1_000_000)
    p.add_argument("--from-zips", action="store_true",
                   help="skip training: use the committed td3-expert.zip/td3-medium.zip (no medium-replay then)")
    p.add_argument("--steps", type=int, default=200_000, help="transitions per collected dataset (D4RL: 1M)")
    p.add_argument("--action-noise", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-episodes", type=int, default=100)
    p.add_argument("--cards", default=str(HERE), help="where the cards and policy zips go")
    p.add_argument("--overwrite", action="store_true", help="replace existing datasets with the same ids")
    p.add_argument("--markdown-only", action="store_true", help="only rewrite DATASETS.md from the JSON cards")
    args = p.parse_args(argv)
    if args.markdown_only:
        write_markdown(Path(args.cards))
        return 0

    import seqpolicy  # noqa: F401  (registers envs)
    from seqpolicy.agents.base import RandomAgent
    from seqpolicy.agents.sb3 import SB3Agent
    from seqpolicy.collect import collect, write_collected
    from seqpolicy.common.artifact import atomic_write_json
    from seqpolicy.data.minari_io import minari_root, write_minari
    from seqpolicy.data.trajectories import Trajectories
    from seqpolicy.evaluation.scores import D4RL_REFERENCE
    from seqpolicy.training.baseline import pick_expert_and_medium

    cards = Path(args.cards)
    (cards / "datasets").mkdir(parents=True, exist_ok=True)
    run_dir = Path(args.run)
    command = "python envs/Hopper-v4/make_datasets.py " + " ".join(sys.argv[1:] if argv is None else argv)
    ref_min, ref_max = D4RL_REFERENCE["Hopper"]

    # -- 1. the baseline run -------------------------------------------------------------------------------
    if args.from_zips:
        expert_zip, medium_zip = cards / "td3-expert.zip", cards / "td3-medium.zip"
        expert_ck = json.loads(expert_zip.with_suffix(".json").read_text())["checkpoint"]
        medium_ck = json.loads(medium_zip.with_suffix(".json").read_text())["checkpoint"]
        run = None
    else:
        if not (run_dir / "final.json").is_file():
            cmd = ["seqpolicy-baseline", "train", "--algo", "td3", "--env", ENV_ID, "--steps", str(args.train_steps),
                   "--seed", str(args.seed), "--keep-replay", "--max-minutes", str(args.train_minutes),
                   "--out", str(run_dir)]
            print("training:", " ".join(cmd), flush=True)
            subprocess.run(cmd, check=True)
        run = json.loads((run_dir / "run.json").read_text())
        expert_ck, medium_ck = pick_expert_and_medium(run["checkpoints"])
        expert_zip, medium_zip = run_dir / expert_ck["zip"], run_dir / medium_ck["zip"]
    print(f"expert: {expert_ck['zip']} (step {expert_ck['step']}, eval {expert_ck['eval_return_mean']:.1f}); "
          f"medium: {medium_ck['zip']} (step {medium_ck['step']}, eval {medium_ck['eval_return_mean']:.1f})",
          flush=True)

    # -- 2. reference scores over --eval-episodes episodes ---------------------------------------------------
    import gymnasium as gym

    env = gym.make(ENV_ID)
    expert = SB3Agent.load(expert_zip, algo="td3", trusted=True)
    medium = SB3Agent.load(medium_zip, algo="td3", trusted=True)
    eval_seed = 1_000_000 + args.seed  # away from the collection seeds
    refs = {
        "random": evaluate_agent(RandomAgent(env.observation_space, env.action_space, seed=args.seed),
                                 args.eval_episodes, eval_seed),
        "sb3_medium": evaluate_agent(medium, args.eval_episodes, eval_seed),
        "sb3_expert": evaluate_agent(expert, args.eval_episodes, eval_seed),
    }
    for k, v in refs.items():
        print(f"{k}: {v['mean']:.1f} +- {v['std']:.1f} over {v['episodes']} episodes", flush=True)

    # -- 3. the policies, committed next to the cards --------------------------------------------------------
    if not args.from_zips:
        for name, ck, src, ref in (("expert", expert_ck, expert_zip, refs["sb3_expert"]),
                                   ("medium", medium_ck, medium_zip, refs["sb3_medium"])):
            dst = cards / f"td3-{name}.zip"
            shutil.copyfile(src, dst)
            atomic_write_json(dst.with_suffix(".json"), {
                "algo": "td3", "env_id": ENV_ID, "role": name, "checkpoint": ck, "run_config": run["config"],
                "hyperparams": run["hyperparams"], "versions": run["versions"], "sha256": file_sha256(dst),
                f"eval_{args.eval_episodes}_episodes": ref,
                "warning": "SB3 zips are pickle-based: load only copies you trust (this one came from "
                           "seqpolicy-baseline; check its sha256)."})

    # -- 4. datasets -----------------------------------------------------------------------------------------
    built: dict[str, tuple[Trajectories, dict]] = {}

    def finish(name: str, data: Trajectories, wall: float, how: dict) -> None:
        dataset_id = f"{NAMESPACE}/{name}-v0"
        t0 = time.monotonic()
        if name in ("medium", "expert"):
            write_collected(data, dataset_id, description=how["description"], overwrite=args.overwrite,
                            extra={"recipe": command}, ref_scores=(ref_min, ref_max))
        else:
            write_minari(data, dataset_id, env_id=ENV_ID, metadata={**how, "recipe": command},
                         description=how["description"], algorithm_name="td3", overwrite=args.overwrite,
                         ref_min_score=ref_min, ref_max_score=ref_max)
        wall += time.monotonic() - t0
        s = data.stats()
        rets = data.returns
        done = np.array([ep.terminated or len(ep) == 1000 for ep in data.episodes])
        h5 = minari_root() / dataset_id / "data" / "main_data.hdf5"
        card = {
            "dataset_id": dataset_id, "env_id": ENV_ID, "command": command, "seed": args.seed,
            "definition": how["description"], "transitions": s.n_transitions, "episodes": s.n_episodes,
            "terminated": s.n_terminated,
            "return": {"min": s.return_min, "mean": s.return_mean, "std": float(rets.std()), "max": s.return_max},
            "return_complete_episodes_mean": float(rets[done].mean()) if done.any() else None,
            "d4rl_normalized_mean_return": 100 * (s.return_mean - ref_min) / (ref_max - ref_min),
            "length": {"min": s.length_min, "mean": s.length_mean, "max": s.length_max},
            "content_sha256": content_sha256(data), "file": str(h5.relative_to(minari_root())),
            "file_sha256": file_sha256(h5), "file_bytes": h5.stat().st_size, "wall_s": round(wall, 1),
            "policy": how.get("policy"), "action_noise": how.get("action_noise"),
        }
        atomic_write_json(cards / "datasets" / f"{name}.json", card)
        built[name] = (data, card)
        print(f"{dataset_id}: {s.n_transitions} transitions, {s.n_episodes} episodes, return mean "
              f"{s.return_mean:.1f} (min {s.return_min:.1f}, max {s.return_max:.1f}), {wall:.0f} s", flush=True)

    # episode i of medium/expert is reset with seed + 100_000 + i / seed + 200_000 + i: no start state is shared
    # with the other dataset, the training run (seed + i) or the reference evaluations (seed + 1_000_000 + i).
    for name, zip_path, ck, seed in (("medium", medium_zip, medium_ck, args.seed + 100_000),
                                     ("expert", expert_zip, expert_ck, args.seed + 200_000)):
        t0 = time.monotonic()
        data = collect(ENV_ID, zip_path, n_steps=args.steps, seed=seed, action_noise=args.action_noise,
                       trust_zip=True)  # zips this recipe made (or the committed, checksummed ones)
        data.metadata["checkpoint"] = {"step": ck["step"], "eval_return_mean": ck["eval_return_mean"]}
        finish(name, data, time.monotonic() - t0, {
            "description": f"{args.steps} transitions of the TD3 {name} policy (checkpoint at step {ck['step']}) "
                           f"with N(0, {args.action_noise}) action noise; episode i reset with seed {seed} + i.",
            "policy": f"td3-{name}.zip", "action_noise": args.action_noise})

    if run is not None:
        t0 = time.monotonic()
        with np.load(run_dir / "replay.npz", allow_pickle=False) as z:
            arrays = {k: z[k][: medium_ck["step"]] for k in z.files}
        replay = Trajectories.from_arrays(**arrays, env_id=ENV_ID, dataset_id=f"{NAMESPACE}/medium-replay-v0")
        finish("medium-replay", replay, time.monotonic() - t0, {
            "description": f"The TD3 training replay buffer up to the medium checkpoint (first {medium_ck['step']} "
                           "env steps, including the 10k uniform-random warm-up steps); a trailing partial "
                           "episode is kept as truncated.",
            "policy": "td3 training (exploration noise N(0, 0.1))", "action_noise": None})

    t0 = time.monotonic()
    mixed = Trajectories(built["medium"][0].episodes + built["expert"][0].episodes, env_id=ENV_ID)
    finish("medium-expert", mixed, time.monotonic() - t0, {
        "description": "medium-v0 followed by expert-v0 (concatenated, as in D4RL).",
        "policy": "td3-medium.zip + td3-expert.zip", "action_noise": args.action_noise})

    # -- 5. the markdown card --------------------------------------------------------------------------------
    recipe = {"command": command, "seed": args.seed, "steps": args.steps, "action_noise": args.action_noise,
              "eval_episodes": args.eval_episodes, "eval_seed": eval_seed,
              "expert_checkpoint": {k: expert_ck[k] for k in ("step", "eval_return_mean")},
              "medium_checkpoint": {k: medium_ck[k] for k in ("step", "eval_return_mean")},
              "training": None if run is None else {k: run[k] for k in ("status", "steps", "wall_s")}}
    atomic_write_json(cards / "datasets" / "reference_scores.json", {"env_id": ENV_ID, "d4rl_min": ref_min,
                                                                     "d4rl_max": ref_max, **refs,
                                                                     "recipe": recipe})
    write_markdown(cards)
    return 0


def write_markdown(cards: Path) -> None:
    """DATASETS.md from the JSON cards (``--markdown-only`` rewrites it without collecting anything)."""
    refs = json.loads((cards / "datasets" / "reference_scores.json").read_text())
    rec = refs["recipe"]
    paths = [cards / "datasets" / f"{n}.json" for n in ("medium", "expert", "medium-replay", "medium-expert")]
    built = [json.loads(path.read_text()) for path in paths if path.is_file()]
    lines = [
        "# Hopper-v4 datasets (seqpolicy)", "",
        f"Made by `{rec['command']}` (seed {rec['seed']}). Datasets live in the local Minari store "
        "(`$MINARI_DATASETS_PATH` or `~/.minari/datasets`), not in git; the JSON card per dataset (command, seed, "
        "size, return statistics, checksums, wall time) is in `datasets/`.", "",
        "| dataset | transitions | episodes | return mean (min / max) | D4RL-normalised mean | wall time |",
        "| --- | ---: | ---: | --- | ---: | ---: |",
    ]
    for c in built:
        r = c["return"]
        lines.append(f"| `{c['dataset_id']}` | {c['transitions']} | {c['episodes']} | {r['mean']:.1f} "
                     f"({r['min']:.1f} / {r['max']:.1f}) | {c['d4rl_normalized_mean_return']:.1f} "
                     f"| {c['wall_s']:.0f} s |")
    lines += ["", f"## Reference scores (Hopper-v4, {rec['eval_episodes']} episodes, seeds {rec['eval_seed']}+i, "
              "deterministic policies)", "",
              "| policy | return mean ± std | 95% CI | D4RL-normalised |", "| --- | ---: | --- | ---: |",
              f"| D4RL random reference (Hopper v3) | {refs['d4rl_min']} | | 0 |",
              f"| D4RL expert reference (Hopper v3) | {refs['d4rl_max']} | | 100 |"]
    for k in ("random", "sb3_medium", "sb3_expert"):
        v = refs[k]
        lines.append(f"| {k} | {v['mean']:.1f} ± {v['std']:.1f} | {v['ci95'][0]:.1f} to {v['ci95'][1]:.1f} | "
                     f"{v['d4rl_normalized']:.1f} |")
    ex, me, tr = rec["expert_checkpoint"], rec["medium_checkpoint"], rec["training"]
    lines += ["", "## How and why", ""]
    if tr:
        lines.append(f"- Training: TD3, rl-zoo hyperparameters with [256, 256] networks, seed {rec['seed']}: "
                     f"{tr['steps']} env steps in {tr['wall_s']:.0f} s (stopped by: {tr['status']}), a checkpoint "
                     "with a 10-episode evaluation every 10k steps.")
    lines += [
        f"- Expert = the best checkpoint, step {ex['step']} (10-episode evaluation {ex['eval_return_mean']:.1f}); "
        f"medium = the earlier checkpoint closest to a third of that, step {me['step']} "
        f"({me['eval_return_mean']:.1f}). Both zips are committed here (`td3-expert.zip`, `td3-medium.zip`, "
        "sha256 in their JSON cards); `--from-zips` rebuilds medium, expert and medium-expert from them "
        "without training (collection is seeded: the first 3000 medium transitions were checked to reproduce "
        "exactly on this machine).",
        f"- Size: {rec['steps']} transitions per collected dataset instead of D4RL's 1M, so the whole set loads in "
        "seconds and fits the 2-core CPU sessions DT/TT are trained in here; medium-replay is the replay buffer "
        f"up to the medium checkpoint ({me['step']} transitions), medium-expert the two concatenated.",
        f"- Action noise N(0, {rec['action_noise']}) on medium and expert: TD3's own exploration noise, standing "
        "in for D4RL sampling SAC's stochastic policy (a deterministic policy from near-identical start states "
        "gives near-identical episodes). It costs return: compare each dataset's mean with the deterministic "
        "policy's reference score above.", ""]
    (cards / "DATASETS.md").write_text("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
