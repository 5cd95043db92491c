"""A zoo env's offline datasets, made the way D4RL made its MuJoCo ones, on a CPU.

One command per env (it trains the SB3 baseline first when --run holds no finished run)::

    python envs/make_datasets.py --env Hopper-v4 --from-zips    # rebuild from the committed policies (~3 min)
    python envs/make_datasets.py --env HalfCheetah-v4 --run ~/runs/halfcheetah-v4-td3
    python envs/make_datasets.py --env Walker2d-v4              # trains TD3 into the manifest's run folder (~2 h)
    python envs/make_datasets.py --env Hopper-v4 --medium-replay-only   # TD3 again up to the medium step (~30 min)

What differs between envs is in ``envs/<EnvId>/manifest.json`` under ``datasets`` (Minari namespace, transitions per
dataset, action noise, and the baseline's algorithm, run folder and time budget); the D4RL reference returns come
from ``seqpolicy.evaluation.scores``. The steps:

1. ``seqpolicy-baseline train --algo td3 --env ENV --keep-replay`` (rl-zoo hyperparameters; TD3 rather than
   D4RL's SAC because it trains faster here: 86 vs 54 env steps/s on Hopper-v4, one torch thread, 2-core CPU)
   until the step or time budget.
2. expert = the checkpoint with the highest 10-episode evaluation return; medium = the checkpoint before it
   whose evaluation return is closest to a third of the expert's (D4RL: "a policy stopped at about one third
   of expert return").
3. Minari datasets in the local store (``$MINARI_DATASETS_PATH`` or ``~/.minari/datasets``), e.g. for Hopper-v4:
   ``seqpolicy/hopper-v4/expert-v0``   ``steps`` transitions of the expert, with N(0, action_noise) action noise
   ``seqpolicy/hopper-v4/medium-v0``   ``steps`` transitions of the medium policy, with the same noise
   ``seqpolicy/hopper-v4/medium-replay-v0``  the training replay buffer up to the medium checkpoint
   ``seqpolicy/hopper-v4/medium-expert-v0``  medium + expert, concatenated
4. Cards: ``envs/<EnvId>/datasets/<name>.json`` and ``envs/<EnvId>/DATASETS.md`` (command, seed, size, return
   statistics, checksums, wall time, machine, reference scores), and the two policies, each in its folder with its
   card (``td3-expert/td3-expert.zip`` and ``td3-expert/card.json``, the same for ``td3-medium``), so the datasets
   can be rebuilt without retraining (``--from-zips``, which reads the env folder's zips).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from zoo_common import env_folder, machine, read_manifest, sha256, zoo_envs

from seqpolicy.zoo import card_path

NAMES = ("medium", "expert", "medium-replay", "medium-expert")


@dataclass(frozen=True)
class DatasetRecipe:
    """How an env's datasets are made: the manifest's ``datasets`` section, with command-line overrides."""

    env_id: str
    """Gymnasium id of the env."""
    namespace: str
    """Minari namespace of the datasets, e.g. seqpolicy/hopper-v4 (ids are <namespace>/<name>-v0)."""
    algo: str
    """SB3 algorithm of the baseline run (its zips are shipped as <algo>-expert/<algo>-expert.zip and
    <algo>-medium/<algo>-medium.zip)."""
    run: str
    """The baseline run folder (trained there when it holds no finished run)."""
    train_minutes: float
    """Wall-clock budget of the baseline training."""
    train_steps: int
    """Env-step budget of the baseline training."""
    steps: int
    """Transitions per collected dataset (medium, expert; D4RL: 1M)."""
    action_noise: float
    """Std of the Gaussian noise added to the policies' actions while collecting, in half action ranges."""

    def __post_init__(self):
        if not self.namespace or self.namespace.endswith("/"):
            raise ValueError(f"datasets.namespace must be a Minari namespace such as seqpolicy/hopper-v4, got "
                             f"{self.namespace!r}.")
        if self.steps < 1 or self.train_steps < 1 or self.train_minutes <= 0 or self.action_noise < 0:
            raise ValueError(f"steps, train_steps and train_minutes must be > 0 and action_noise >= 0: {self}.")

    @classmethod
    def from_manifest(cls, manifest: dict, **overrides) -> DatasetRecipe:
        """Read ``manifest["datasets"]``; ``overrides`` that are not None replace its values.

        Raises:
            ValueError: the manifest has no ``datasets`` section or lacks one of its keys (names it).
        """
        section = manifest.get("datasets")
        if not isinstance(section, dict):
            raise ValueError(f"{manifest.get('env_id')}: manifest.json has no 'datasets' section; add one like "
                             "envs/Hopper-v4/manifest.json's (namespace, steps, action_noise, baseline).")
        baseline = section.get("baseline", {})
        values = {"env_id": manifest.get("env_id"), "namespace": section.get("namespace"),
                  "algo": baseline.get("algo"), "run": baseline.get("run"),
                  "train_minutes": baseline.get("max_minutes"), "train_steps": baseline.get("steps"),
                  "steps": section.get("steps"), "action_noise": section.get("action_noise")}
        values.update({k: v for k, v in overrides.items() if v is not None})
        missing = [k for k, v in values.items() if v is None]
        if missing:
            raise ValueError(f"{manifest.get('env_id')}: manifest.json's 'datasets' section lacks {', '.join(missing)} "
                             "(see envs/Hopper-v4/manifest.json).")
        return cls(**values)

    def dataset_id(self, name: str) -> str:
        return f"{self.namespace}/{name}-v0"


def content_sha256(data) -> str:
    """SHA-256 of the dataset's flat arrays (float32/bool bytes): the same for the same data, whatever file."""
    h = hashlib.sha256()
    for k, v in data.to_arrays().items():
        h.update(k.encode())
        h.update(np.ascontiguousarray(v).tobytes())
    return h.hexdigest()


def versions() -> dict[str, str]:
    """The packages that decide a dataset's numbers (collection replays the same seeds through them)."""
    import mujoco
    import stable_baselines3

    from seqpolicy.common.artifact import package_versions

    return {**package_versions(), "mujoco": mujoco.__version__, "stable_baselines3": stable_baselines3.__version__}


def evaluate_agent(agent, env_id: str, episodes: int, seed: int, reference: tuple[float, float] | None) -> dict:
    from seqpolicy.evaluation.evaluate import evaluate

    res = evaluate(agent, env_id, n_episodes=episodes, seed=seed, n_envs=min(10, episodes))
    return {"episodes": res.n_episodes, "seed": seed, "mean": res.mean, "std": res.std, "ci95": list(res.ci95),
            "min": float(np.min(res.returns)), "max": float(np.max(res.returns)),
            "mean_length": float(np.mean(res.lengths)),
            "d4rl_normalized": normalized(res.mean, reference), "wall_s": round(res.wall_time_s, 1)}


def normalized(value: float, reference: tuple[float, float] | None) -> float | None:
    """D4RL's normalised score of ``value`` (seqpolicy's function), or None for an env D4RL has no references for."""
    from seqpolicy.evaluation.scores import d4rl_normalize

    return None if reference is None else float(d4rl_normalize(value, reference))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", required=True, help=f"a zoo env with a manifest.json: {', '.join(zoo_envs())}")
    p.add_argument("--run", help="baseline run folder, trained when it holds no finished run (default: the "
                                 "manifest's datasets.baseline.run)")
    p.add_argument("--train-minutes", type=float, help="wall-clock budget if training is needed (default: manifest)")
    p.add_argument("--train-steps", type=int, help="env-step budget if training is needed (default: manifest)")
    p.add_argument("--from-zips", action="store_true",
                   help="skip training: use the env folder's <algo>-expert/ and <algo>-medium/ zips (no medium-replay)")
    p.add_argument("--medium-replay-only", action="store_true",
                   help="build only medium-replay: train the baseline again with the committed medium policy's run "
                        "settings (seed, overrides, checkpoints) for exactly its checkpoint's env steps, its replay "
                        "buffer kept, into --run (default runs/<env>-<algo>-medium-replay; a finished run there is "
                        "reused), and write that buffer. The card goes to a temporary folder and is compared with the "
                        "committed one unless --cards is given. Training is deterministic on one kind of CPU only, "
                        "so another kind of CPU gives another buffer")
    p.add_argument("--steps", type=int, help="transitions per collected dataset (default: manifest; D4RL: 1M)")
    p.add_argument("--action-noise", type=float, help="collection action noise (default: manifest)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-episodes", type=int, default=100)
    p.add_argument("--cards", help="where the cards and policy zips go (default: envs/<EnvId>/; with --from-zips a "
                                   "temporary folder, compared with the committed cards, which are left as they are)")
    p.add_argument("--overwrite", action="store_true", help="replace existing datasets with the same ids")
    p.add_argument("--markdown-only", action="store_true", help="only rewrite DATASETS.md from the JSON cards")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    folder = env_folder(args.env)
    cards = Path(args.cards) if args.cards else folder
    if args.markdown_only:
        write_markdown(cards)
        return 0
    recipe = DatasetRecipe.from_manifest(read_manifest(folder), run=args.run, train_minutes=args.train_minutes,
                                       train_steps=args.train_steps, steps=args.steps, action_noise=args.action_noise)
    command = "python envs/make_datasets.py " + " ".join(sys.argv[1:] if argv is None else argv)
    if args.from_zips and args.medium_replay_only:
        raise SystemExit("--from-zips rebuilds medium, expert and medium-expert from the committed zips, "
                         "--medium-replay-only trains again for medium-replay: give one of them.")
    flag = "--from-zips" if args.from_zips else "--medium-replay-only" if args.medium_replay_only else None
    if flag and not args.cards:
        # A rebuild checks the committed cards instead of rewriting them: the datasets must match bit for bit,
        # while the reference returns, wall times and machine are this machine's (they differ between CPUs).
        cards = Path(tempfile.mkdtemp(prefix=f"seqpolicy-{folder.name}-cards-"))
        print(f"{flag}: the new cards go to {cards} and are compared with {folder}'s", flush=True)
    (build_medium_replay if args.medium_replay_only else build)(recipe, folder, cards, command, args)
    if cards != folder and (folder / "datasets").is_dir():
        return compare_cards(folder, cards)
    return 0


def compare_cards(committed: Path, rebuilt: Path) -> int:
    """Print how the rebuilt cards differ from the committed ones; 1 if a dataset's content differs."""
    status = 0
    for card in sorted((rebuilt / "datasets").glob("*.json")):
        old_path = committed / "datasets" / card.name
        if not old_path.is_file():
            print(f"{card.name}: no committed card to compare with")
            continue
        new, old = json.loads(card.read_text()), json.loads(old_path.read_text())
        if "content_sha256" in new:
            same = new["content_sha256"] == old.get("content_sha256")
            status |= not same
            print(f"{new['dataset_id']}: {'same data as' if same else 'DIFFERENT DATA FROM'} the committed card "
                  f"(content sha256 {new['content_sha256'][:12]}...)")
            continue
        for name, ref in new.items():  # reference_scores.json: returns measured on this machine
            if isinstance(ref, dict) and "mean" in ref and isinstance(old.get(name), dict):
                print(f"reference {name}: {ref['mean']:.1f} here, {old[name]['mean']:.1f} in the committed card "
                      "(policy returns differ in the last bits between CPUs; the committed figure stays)")
    return status


def policy_zip(folder: Path, algo: str, role: str) -> Path:
    """Where an env folder keeps the baseline's ``role`` (expert, medium) policy: ``<algo>-<role>/<algo>-<role>.zip``,
    its card (``card.json``) beside it."""
    return folder / f"{algo}-{role}" / f"{algo}-{role}.zip"


def build(recipe: DatasetRecipe, folder: Path, cards: Path, command: str, args: argparse.Namespace) -> None:
    import seqpolicy  # noqa: F401  (registers envs)
    from seqpolicy.agents.base import RandomAgent
    from seqpolicy.agents.sb3 import SB3Agent
    from seqpolicy.collect import collect
    from seqpolicy.common.artifact import atomic_write_json
    from seqpolicy.common.envs import gym_make
    from seqpolicy.data.trajectories import Trajectories
    from seqpolicy.evaluation.scores import d4rl_reference
    from seqpolicy.training.baseline import pick_expert_and_medium

    env_id, algo = recipe.env_id, recipe.algo
    run_dir = Path(recipe.run).expanduser()
    names = [n for n in NAMES if n != "medium-replay" or not args.from_zips]
    refuse_taken(recipe, names, args.overwrite)  # fail now rather than after minutes of collecting
    if args.from_zips:
        for path in (policy_zip(folder, algo, "expert"), policy_zip(folder, algo, "medium")):
            if not (path.is_file() and card_path(path).is_file()):
                raise SystemExit(f"{path} or its card does not exist, so there is nothing to rebuild from: build "
                                 f"from a baseline run instead, python envs/make_datasets.py --env {env_id} --run RUN "
                                 "(it trains one into RUN first when RUN holds no finished run).")
    (cards / "datasets").mkdir(parents=True, exist_ok=True)
    reference = d4rl_reference(env_id)
    ref_min, ref_max = reference or (None, None)
    env = gym_make(env_id)  # without the notices about the v4 the zoo chose
    max_steps = env.spec.max_episode_steps if env.spec else None

    # -- 1. the baseline run -------------------------------------------------------------------------------
    if args.from_zips:
        expert_zip, medium_zip = policy_zip(folder, algo, "expert"), policy_zip(folder, algo, "medium")
        expert_ck = json.loads(card_path(expert_zip).read_text())["checkpoint"]
        medium_ck = json.loads(card_path(medium_zip).read_text())["checkpoint"]
        run = None
    else:
        if not (run_dir / "final.json").is_file():
            cmd = ["seqpolicy-baseline", "train", "--algo", algo, "--env", env_id, "--steps", str(recipe.train_steps),
                   "--seed", str(args.seed), "--keep-replay", "--max-minutes", str(recipe.train_minutes),
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
    expert = SB3Agent.load(expert_zip, algo=algo, trusted=True)
    medium = SB3Agent.load(medium_zip, algo=algo, trusted=True)
    eval_seed = 1_000_000 + args.seed  # away from the collection seeds
    refs = {
        "random": evaluate_agent(RandomAgent(env.observation_space, env.action_space, seed=args.seed), env_id,
                                 args.eval_episodes, eval_seed, reference),
        "sb3_medium": evaluate_agent(medium, env_id, args.eval_episodes, eval_seed, reference),
        "sb3_expert": evaluate_agent(expert, env_id, args.eval_episodes, eval_seed, reference),
    }
    for k, v in refs.items():
        print(f"{k}: {v['mean']:.1f} +- {v['std']:.1f} over {v['episodes']} episodes", flush=True)

    # -- 3. the policies, committed in a folder each with their cards --------------------------------------
    if run is not None:
        for name, ck, src, ref in (("expert", expert_ck, expert_zip, refs["sb3_expert"]),
                                   ("medium", medium_ck, medium_zip, refs["sb3_medium"])):
            dst = policy_zip(cards, algo, name)
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)
            atomic_write_json(card_path(dst), {
                "algo": algo, "env_id": env_id, "role": name, "checkpoint": ck, "run_config": run["config"],
                "hyperparams": run["hyperparams"], "versions": run["versions"], "sha256": sha256(dst),
                "training": {k: run[k] for k in ("status", "steps", "wall_s")}, "trained_on": machine(),
                f"eval_{args.eval_episodes}_episodes": ref,
                "warning": "SB3 zips are pickle-based: load only copies you trust (this one came from "
                           "seqpolicy-baseline; check its sha256)."})

    # -- 4. datasets -----------------------------------------------------------------------------------------
    built: dict[str, Trajectories] = {}
    finish = dataset_writer(recipe, cards, command, args, reference, max_steps, built)

    # episode i of medium/expert is reset with seed + 100_000 + i / seed + 200_000 + i: no start state is shared
    # with the other dataset, the training run (seed + i) or the reference evaluations (seed + 1_000_000 + i).
    for name, zip_path, ck, seed in (("medium", medium_zip, medium_ck, args.seed + 100_000),
                                     ("expert", expert_zip, expert_ck, args.seed + 200_000)):
        t0 = time.monotonic()
        data = collect(env_id, zip_path, n_steps=recipe.steps, seed=seed, action_noise=recipe.action_noise,
                       trust_zip=True)  # zips this recipe made (or the committed, checksummed ones)
        data.metadata["checkpoint"] = {"step": ck["step"], "eval_return_mean": ck["eval_return_mean"]}
        finish(name, data, time.monotonic() - t0, {
            "description": f"{recipe.steps} transitions of the {algo.upper()} {name} policy (checkpoint at step "
                           f"{ck['step']}) with N(0, {recipe.action_noise}) action noise; episode i reset with "
                           f"seed {seed} + i.",
            "policy": f"{algo}-{name}.zip", "action_noise": recipe.action_noise})

    if run is not None:
        t0 = time.monotonic()
        replay, how = replay_dataset(run_dir, run, medium_ck["step"], recipe)
        finish("medium-replay", replay, time.monotonic() - t0, how)

    t0 = time.monotonic()
    mixed = Trajectories(built["medium"].episodes + built["expert"].episodes, env_id=env_id)
    finish("medium-expert", mixed, time.monotonic() - t0, {
        "description": "medium-v0 followed by expert-v0 (concatenated, as in D4RL).",
        "policy": f"{algo}-medium.zip + {algo}-expert.zip", "action_noise": recipe.action_noise})

    # -- 5. the markdown card --------------------------------------------------------------------------------
    doc = {"command": command, "seed": args.seed, "steps": recipe.steps, "action_noise": recipe.action_noise,
           "eval_episodes": args.eval_episodes, "eval_seed": eval_seed,
           "expert_checkpoint": {k: expert_ck[k] for k in ("step", "eval_return_mean")},
           "medium_checkpoint": {k: medium_ck[k] for k in ("step", "eval_return_mean")},
           "training": None if run is None else {k: run[k] for k in ("status", "steps", "wall_s")},
           "settings": asdict(recipe)}
    atomic_write_json(cards / "datasets" / "reference_scores.json", {"env_id": env_id, "d4rl_min": ref_min,
                                                                     "d4rl_max": ref_max, **refs, "recipe": doc})
    write_markdown(cards)


def refuse_taken(recipe: DatasetRecipe, names: list[str], overwrite: bool) -> None:
    """SystemExit when one of the datasets ``names`` is in the local store already and ``overwrite`` is off."""
    from seqpolicy.data.minari_io import local_minari_ids, minari_root

    taken = sorted(set(map(recipe.dataset_id, names)) & set(local_minari_ids()))
    if taken and not overwrite:
        raise SystemExit(f"{', '.join(taken)} already in {minari_root()}: pass --overwrite to replace "
                         f"{'it' if len(taken) == 1 else 'them'}.")


def dataset_writer(recipe: DatasetRecipe, cards: Path, command: str, args: argparse.Namespace,
                   reference: tuple[float, float] | None, max_steps: int | None, built: dict):
    """``finish(name, data, wall, how)``: write dataset ``name`` to the local Minari store and its JSON card to
    ``cards/datasets/<name>.json``, and keep it in ``built``."""
    from seqpolicy.collect import write_collected
    from seqpolicy.common.artifact import atomic_write_json
    from seqpolicy.data.minari_io import minari_root, write_minari

    env_id, algo = recipe.env_id, recipe.algo
    ref_min, ref_max = reference or (None, None)

    def finish(name: str, data, wall: float, how: dict) -> None:
        dataset_id = recipe.dataset_id(name)
        t0 = time.monotonic()
        if name in ("medium", "expert"):
            write_collected(data, dataset_id, description=how["description"], overwrite=args.overwrite,
                            extra={"recipe": command}, ref_scores=reference)
        else:
            write_minari(data, dataset_id, env_id=env_id, metadata={**how, "recipe": command},
                         description=how["description"], algorithm_name=algo, overwrite=args.overwrite,
                         ref_min_score=ref_min, ref_max_score=ref_max)
        wall += time.monotonic() - t0
        h5 = minari_root() / dataset_id / "data" / "main_data.hdf5"
        atomic_write_json(cards / "datasets" / f"{name}.json", {
            "dataset_id": dataset_id, "env_id": env_id, "command": command, "seed": args.seed,
            "definition": how["description"], **dataset_summary(data, max_steps, reference),
            "content_sha256": content_sha256(data), "file": str(h5.relative_to(minari_root())),
            "file_sha256": sha256(h5), "file_bytes": h5.stat().st_size, "wall_s": round(wall, 1),
            "policy": how.get("policy"), "action_noise": how.get("action_noise"), "machine": machine(),
            "versions": versions(), **({"baseline_run": how["baseline_run"]} if "baseline_run" in how else {})})
        built[name] = data
        s = data.stats()
        print(f"{dataset_id}: {s.n_transitions} transitions, {s.n_episodes} episodes, return mean "
              f"{s.return_mean:.1f} (min {s.return_min:.1f}, max {s.return_max:.1f}), {wall:.0f} s", flush=True)

    return finish


def replay_dataset(run_dir: Path, run: dict, medium_step: int, recipe: DatasetRecipe):
    """The run's replay buffer up to ``medium_step`` as a dataset, and how its card describes it."""
    from seqpolicy.data.trajectories import Trajectories

    with np.load(run_dir / "replay.npz", allow_pickle=False) as z:
        arrays = {k: z[k][:medium_step] for k in z.files}
    if len(arrays["actions"]) < medium_step:
        raise SystemExit(f"{run_dir}/replay.npz holds {len(arrays['actions'])} transitions, fewer than the medium "
                         f"checkpoint's {medium_step}: the run stopped early; train it again (--overwrite).")
    replay = Trajectories.from_arrays(**arrays, env_id=recipe.env_id, dataset_id=recipe.dataset_id("medium-replay"))
    hp, algo = run["hyperparams"], recipe.algo
    warmup = f", including the {hp['learning_starts']} uniform-random warm-up steps" if "learning_starts" in hp else ""
    return replay, {
        "description": f"The {algo.upper()} training replay buffer up to the medium checkpoint (first "
                       f"{medium_step} env steps{warmup}); a trailing partial episode is kept as truncated.",
        "policy": f"{algo} training" + (f" (exploration noise N(0, {hp['action_noise_std']}))"
                                        if "action_noise_std" in hp else ""),
        "action_noise": None}


def build_medium_replay(recipe: DatasetRecipe, folder: Path, cards: Path, command: str,
                        args: argparse.Namespace) -> None:
    """``--medium-replay-only``: the baseline trained again, as the committed medium policy was, up to its step.

    The committed ``<algo>-medium/card.json`` gives the run's settings and the medium checkpoint's step; the new
    run stops there, so its replay buffer is what the original run's held up to the medium policy when training is
    deterministic (one kind of CPU, the same package versions). The new run's checkpoint at that step is recorded
    in the card beside the committed medium policy's evaluation, so a reader sees whether the runs agree.
    """
    import seqpolicy  # noqa: F401  (registers envs)
    from seqpolicy.common.envs import gym_make
    from seqpolicy.evaluation.scores import d4rl_reference
    from seqpolicy.training.baseline import BaselineConfig, train_baseline

    env_id, algo = recipe.env_id, recipe.algo
    medium_card = card_path(policy_zip(folder, algo, "medium"))
    if not medium_card.is_file():
        raise SystemExit(f"{medium_card} does not exist: --medium-replay-only trains again as the committed medium "
                         f"policy was trained; without one, build everything: python envs/make_datasets.py --env "
                         f"{env_id}.")
    committed = json.loads(medium_card.read_text())
    step, settings = committed["checkpoint"]["step"], dict(committed["run_config"])
    refuse_taken(recipe, ["medium-replay"], args.overwrite)
    run_dir = Path(args.run or f"runs/{env_id.lower()}-{algo}-medium-replay").expanduser()
    config = BaselineConfig(**{**settings, "steps": step, "keep_replay": True, "max_minutes": None})
    if (run_dir / "final.json").is_file():
        print(f"reusing the finished run in {run_dir}", flush=True)
    else:
        print(f"training {algo} on {env_id} for {step} env steps (the committed medium checkpoint's) into {run_dir}, "
              f"settings of {medium_card}", flush=True)
        train_baseline(config, run_dir, progress=True)
    run = json.loads((run_dir / "run.json").read_text())
    theirs = {k: v for k, v in run["config"].items() if k not in ("steps", "max_minutes")}
    ours = {k: v for k, v in asdict(config).items() if k not in ("steps", "max_minutes")}
    if theirs != ours:
        raise SystemExit(f"{run_dir} was trained with other settings than {medium_card}'s: {theirs} against "
                         f"{ours}; use another --run.")
    last = next((c for c in run["checkpoints"] if c["step"] == step), None)
    env = gym_make(env_id)
    (cards / "datasets").mkdir(parents=True, exist_ok=True)
    finish = dataset_writer(recipe, cards, command, args, d4rl_reference(env_id),
                            env.spec.max_episode_steps if env.spec else None, {})
    t0 = time.monotonic()
    replay, how = replay_dataset(run_dir, run, step, recipe)
    how["baseline_run"] = {
        "settings": ours, "steps": step, "wall_s": run.get("wall_s"),
        "checkpoint_eval_return_mean": None if last is None else last["eval_return_mean"],
        "committed_medium_eval_return_mean": committed["checkpoint"]["eval_return_mean"]}
    finish("medium-replay", replay, time.monotonic() - t0, how)
    if last is not None:
        print(f"this run's checkpoint at step {step}: eval {last['eval_return_mean']:.1f}; the committed medium "
              f"policy's: {committed['checkpoint']['eval_return_mean']:.1f}", flush=True)
    if (cards / "datasets" / "reference_scores.json").is_file():
        write_markdown(cards)


def dataset_summary(data, max_steps: int | None, reference: tuple[float, float] | None) -> dict:
    """Size, return and length statistics of a dataset, as its card records them.

    ``return_complete_episodes_mean`` counts the episodes that terminated or reached the env's time limit
    (``max_steps``), leaving out the one the step budget cut short.
    """
    s = data.stats()
    rets = data.returns
    done = np.array([ep.terminated or len(ep) == max_steps for ep in data.episodes])
    return {
        "transitions": s.n_transitions, "episodes": s.n_episodes, "terminated": s.n_terminated,
        "return": {"min": s.return_min, "mean": s.return_mean, "std": float(rets.std()), "max": s.return_max},
        "return_complete_episodes_mean": float(rets[done].mean()) if done.any() else None,
        "d4rl_normalized_mean_return": normalized(s.return_mean, reference),
        "length": {"min": s.length_min, "mean": s.length_mean, "max": s.length_max},
    }


def write_markdown(cards: Path) -> None:
    """DATASETS.md from the JSON cards (``--markdown-only`` rewrites it without collecting anything)."""
    from seqpolicy.evaluation.scores import env_name_and_version

    refs = json.loads((cards / "datasets" / "reference_scores.json").read_text())
    env_id, rec = refs["env_id"], refs["recipe"]
    d4rl_name = env_name_and_version(env_id)[0]
    paths = [cards / "datasets" / f"{n}.json" for n in NAMES]
    built = [json.loads(path.read_text()) for path in paths if path.is_file()]
    lines = [
        f"# {env_id} datasets (seqpolicy)", "",
        f"Made by `{rec['command']}` (seed {rec['seed']}). Datasets live in the local Minari store "
        "(`$MINARI_DATASETS_PATH` or `~/.minari/datasets`), not in git; the JSON card per dataset (command, seed, "
        "size, return statistics, checksums, wall time) is in `datasets/`.", "",
        f"Rebuild them from the committed policies, without training: `python envs/make_datasets.py --env {env_id} "
        "--from-zips` (add `--overwrite` to replace datasets already in the store). medium-replay is the training "
        f"run's own buffer: `python envs/make_datasets.py --env {env_id} --medium-replay-only` trains the baseline "
        "again with the medium policy's settings up to its step and checks the buffer against the card (training is "
        "only repeatable on the CPU kind it ran on).", "",
        "| dataset | transitions | episodes | return mean (min / max) | D4RL-normalised mean | wall time |",
        "| --- | ---: | ---: | --- | ---: | ---: |",
    ]
    for c in built:
        r = c["return"]
        lines.append(f"| `{c['dataset_id']}` | {c['transitions']} | {c['episodes']} | {r['mean']:.1f} "
                     f"({r['min']:.1f} / {r['max']:.1f}) | {_num(c['d4rl_normalized_mean_return'])} "
                     f"| {c['wall_s']:.0f} s |")
    lines += ["", f"## Reference scores ({env_id}, {rec['eval_episodes']} episodes, seeds {rec['eval_seed']}+i, "
              "deterministic policies)", "",
              "| policy | return mean ± std | 95% CI | D4RL-normalised |", "| --- | ---: | --- | ---: |"]
    if refs["d4rl_min"] is not None:
        lines += [f"| D4RL random reference ({d4rl_name} v3) | {refs['d4rl_min']} | | 0 |",
                  f"| D4RL expert reference ({d4rl_name} v3) | {refs['d4rl_max']} | | 100 |"]
    for k in ("random", "sb3_medium", "sb3_expert"):
        v = refs[k]
        lines.append(f"| {k} | {v['mean']:.1f} ± {v['std']:.1f} | {v['ci95'][0]:.1f} to {v['ci95'][1]:.1f} | "
                     f"{_num(v['d4rl_normalized'])} |")
    ex, me, tr = rec["expert_checkpoint"], rec["medium_checkpoint"], rec["training"]
    algo = rec.get("settings", {}).get("algo", "td3")
    lines += ["", "## How and why", ""]
    if tr:
        lines.append(f"- Training: {algo.upper()}, rl-zoo hyperparameters with [256, 256] networks, seed "
                     f"{rec['seed']}: {tr['steps']} env steps in {tr['wall_s']:.0f} s (stopped by: {tr['status']}), "
                     "a checkpoint with a 10-episode evaluation every 10k steps.")
    lines += [
        f"- Expert = the best checkpoint, step {ex['step']} (10-episode evaluation {ex['eval_return_mean']:.1f}); "
        f"medium = the earlier checkpoint closest to a third of that, step {me['step']} "
        f"({me['eval_return_mean']:.1f}). Both zips are committed here (`{algo}-expert/{algo}-expert.zip`, "
        f"`{algo}-medium/{algo}-medium.zip`, sha256 in the `card.json` beside each); `--from-zips` rebuilds medium, "
        "expert and medium-expert from them without training. Collection is seeded: the same package versions on "
        "the same CPU give the same `content_sha256`; another CPU's math library can round the policies' actions "
        "differently, and the rollouts amplify that (newer cards record the machine and the versions).",
        f"- Size: {rec['steps']} transitions per collected dataset instead of D4RL's 1M, so the whole set loads in "
        "seconds and fits the 2-core CPU sessions DT/TT are trained in here; medium-replay is the replay buffer "
        f"up to the medium checkpoint ({me['step']} transitions), medium-expert the two concatenated.",
        f"- Action noise N(0, {rec['action_noise']}) on medium and expert: TD3's own exploration noise, standing "
        "in for D4RL sampling SAC's stochastic policy (a deterministic policy from near-identical start states "
        "gives near-identical episodes). It costs return: compare each dataset's mean with the deterministic "
        "policy's reference score above."]
    replay = next((c for c in built if c.get("baseline_run")), None)
    if replay is not None:
        run = replay["baseline_run"]
        ours, theirs = run["checkpoint_eval_return_mean"], run["committed_medium_eval_return_mean"]
        same = ours is not None and abs(ours - theirs) < 1e-6
        lines.append(
            f"- medium-replay was made again, by `{replay['command']}` on {replay['machine'].split(',')[0]}: "
            f"{algo.upper()} trained with the committed medium policy's run settings up to its step ({run['steps']}), "
            f"{run['wall_s']:.0f} s. That run's checkpoint at the step evaluates "
            f"{'-' if ours is None else f'{ours:.1f}'} against the committed medium policy's {theirs:.1f}: "
            + ("the same run, so this is the buffer the medium policy was trained on." if same else
               "another run of the same recipe (training rounds differently on another kind of CPU), so this is "
               "the buffer of a run like the medium policy's, not of that run. It rebuilds bit for bit only on "
               "the CPU kind its card names."))
    (cards / "DATASETS.md").write_text("\n".join(lines + [""]))


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


if __name__ == "__main__":
    sys.exit(main())
