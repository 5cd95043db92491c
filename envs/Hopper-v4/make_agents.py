"""Train, calibrate, evaluate and ship the Hopper-v4 zoo agents; write their cards and AGENTS.md.

Every agent is made by the command recorded under ``training`` in ``preset.json`` (this script only runs
it, copies the result here and describes it). The steps, in order, with their times on a 2-core CPU:

    python envs/Hopper-v4/make_agents.py train dt        # the preset's command (see the card for its wall time)
    python envs/Hopper-v4/make_agents.py ship dt         # copy runs/zoo/dt-medium/agent -> dt-medium/
    python envs/Hopper-v4/make_agents.py calibrate dt    # target sweep on seeds 1000+, PNG, best target saved
    python envs/Hopper-v4/make_agents.py evaluate        # seqpolicy-compare, 100 episodes, seeds 0-99 -> results/
    python envs/Hopper-v4/make_agents.py cards           # <artifact>.json cards, README.md model cards, AGENTS.md
    python envs/Hopper-v4/make_agents.py videos          # videos/Hopper-v4/<name>.mp4, one episode (seed 0) each

Names are the preset's agent names (dt, dt-medium-expert, tt, bc; td3 and td3-medium come from
make_datasets.py and are only evaluated here).

``python envs/Hopper-v4/make_agents.py resave [NAMES]`` writes shipped agents again in the current artifact
layout (DT/TT folders that transformers also loads), checking that every weight is unchanged; run ``cards``
after it (the files' sha256 change, and so does seqpolicy-compare's --resume key).

The datasets come first: ``python envs/Hopper-v4/make_datasets.py --from-zips`` (see DATASETS.md).
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from seqpolicy.cli.compare import compare_settings
from seqpolicy.common.artifact import atomic_write_json

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
RUNS = REPO / "runs" / "zoo"
RESULTS = HERE / "results"  # seqpolicy-compare's output (comparison.md/.json/.png, results/<agent>.json)
CALIBRATION_SEED = 1000  # target sweeps use episodes the 100-episode evaluation (seeds 0-99) does not


def load_preset() -> dict:
    return json.loads((HERE / "preset.json").read_text())


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}, no GPU used"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def files_of(path: Path) -> dict[str, dict]:
    files = sorted(path.rglob("*")) if path.is_dir() else [path]
    return {str(f.relative_to(HERE)): {"bytes": f.stat().st_size, "sha256": sha256(f)} for f in files if f.is_file()}


def run_dir(name: str) -> Path:
    command = shlex.split(load_preset()["training"][name]["command"])
    return REPO / command[command.index("--out") + 1]


# -- steps --------------------------------------------------------------------------------------------------

def commands(name: str) -> list[str]:
    """The recorded training commands: ``command``, then any ``then`` commands (runs continued with --resume)."""
    recipe = load_preset()["training"][name]
    return [recipe["command"], *recipe.get("then", [])]


def train(name: str) -> None:
    """Run the recorded commands in order. A run folder with a checkpoint is resumed (--resume is added), so
    an interrupted run continues and a finished command only rewrites its agent."""
    from seqpolicy.training.common import find_checkpoint

    t0 = time.time()
    for command in commands(name):
        argv = shlex.split(command)
        if "--resume" not in argv and find_checkpoint(run_dir(name)) is not None:
            argv.append("--resume")
        print("$ " + shlex.join(argv), flush=True)
        subprocess.run(argv, cwd=REPO, check=True)
    print(f"{name}: trained in {time.time() - t0:.0f} s", flush=True)


def ship(name: str) -> None:
    """Copy the run's agent into envs/Hopper-v4/<name>/ (its agent.json keeps steps and wall time): the final
    one, or with ``"ship": "best"`` in the recipe the one --keep-best kept."""
    source = run_dir(name) / load_preset()["training"][name].get("ship", "agent")
    if not (source / "agent.json").is_file():
        sys.exit(f"{source} has no agent.json: train it first (python {Path(__file__).name} train {name}).")
    target = HERE / load_preset()["agents"][name]
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(source, tmp)
    planner = load_preset().get("planner", {}).get(name)
    if planner:  # the zoo's planner settings for this TT, stored in the artifact
        from seqpolicy.agents.tt.agent import TrajectoryTransformerAgent

        TrajectoryTransformerAgent.load(tmp, **planner.get("overrides", {})).save(tmp)
    if target.exists():
        shutil.rmtree(target)
    os.replace(tmp, target)
    card_path = HERE / f"{target.name}.json"
    card = json.loads(card_path.read_text()) if card_path.is_file() else {}
    atomic_write_json(card_path, {**card, "trained_on": machine()})
    print(f"{name}: {source} -> {target} ({sum(f.stat().st_size for f in target.iterdir()) / 1e6:.1f} MB)")


def resave(names: list[str]) -> None:
    """Load each shipped agent folder and save it again (the current artifact layout), keeping its README.md;
    refuse if any weight or action would change."""
    import numpy as np
    import torch

    from seqpolicy.agents.loading import load_agent

    preset = load_preset()
    for name in names or [n for n, rel in preset["agents"].items() if (HERE / rel / "agent.json").is_file()]:
        folder = HERE / preset["agents"][name]
        tmp = folder.with_name(folder.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        old = load_agent(folder, device="cpu")
        old.save(tmp)
        new = load_agent(tmp, device="cpu")
        old_sd, new_sd = (getattr(a, "model", None) or a.policy for a in (old, new))
        same = old_sd.state_dict().keys() == new_sd.state_dict().keys() and all(
            torch.equal(t, new_sd.state_dict()[k]) for k, t in old_sd.state_dict().items())
        obs = np.random.default_rng(0).normal(size=(4, old.obs_dim)).astype(np.float32)
        if not same or not np.array_equal(old.act(obs), new.act(obs)):
            shutil.rmtree(tmp)
            sys.exit(f"{name}: the re-saved agent differs from {folder}; nothing was replaced.")
        if (folder / "README.md").is_file():
            shutil.copy2(folder / "README.md", tmp / "README.md")
        shutil.rmtree(folder)
        os.replace(tmp, folder)
        print(f"{name}: {folder} re-saved ({', '.join(sorted(p.name for p in folder.iterdir()))}); weights unchanged")


def calibrate(name: str, targets: list[float], episodes: int) -> None:
    """seqpolicy-calibrate on seeds CALIBRATION_SEED.., the PNG beside the card, the best target saved."""
    folder = HERE / load_preset()["agents"][name]
    command = ["seqpolicy-calibrate", "--agent", str(folder), "--env", "Hopper-v4", "--episodes", str(episodes),
               "--seed", str(CALIBRATION_SEED), "--n-envs", str(episodes), "--plot",
               str(HERE / f"{folder.name}-calibration.png"), "--json", str(HERE / f"{folder.name}-calibration.json"),
               "--save"]
    if targets:
        command += ["--targets", *map(str, targets)]
    print("$ " + shlex.join(command), flush=True)
    subprocess.run(command, cwd=REPO, check=True)


def evaluate(episodes: int, n_envs: int, shards: int, agents: list[str]) -> None:
    """100 episodes per agent, seeds 0-99; with --shards N each agent's seeds are split over N processes
    (merged into the file seqpolicy-compare would write); then seqpolicy-compare reuses them for the table."""
    names = agents or list(load_preset()["agents"]) + ["random"]
    if shards > 1:
        for name in names:
            saved = RESULTS / "results" / f"{name}.json"
            settings = compare_settings("Hopper-v4", name, episodes, 0, None)
            if saved.is_file() and json.loads(saved.read_text()).get("compare_settings") == settings:
                continue
            evaluate_sharded(name, episodes, n_envs, shards, saved, settings)
    command = ["seqpolicy-compare", "--env", "Hopper-v4", "--episodes", str(episodes), "--seed", "0",
               "--n-envs", str(n_envs), "--out", str(RESULTS), "--resume"]
    if agents:
        command += ["--agents", *agents]
    print("$ " + shlex.join(command), flush=True)
    subprocess.run(command, cwd=REPO, check=True)


def evaluate_sharded(name: str, episodes: int, n_envs: int, shards: int, saved: Path, settings: dict) -> None:
    from seqpolicy.evaluation.evaluate import EvalResult, merge_results

    bounds = [episodes * k // shards for k in range(shards + 1)]
    parts = [RESULTS / "shards" / f"{name}-{lo}-{hi - 1}.json" for lo, hi in itertools.pairwise(bounds)]
    made_with = RESULTS / "shards" / f"{name}.settings.json"  # finished shards are reused only for the same agent
    if not made_with.is_file() or json.loads(made_with.read_text()) != settings:
        for part in parts:
            part.unlink(missing_ok=True)
        atomic_write_json(made_with, settings)
    procs = []
    for (lo, hi), part in zip(itertools.pairwise(bounds), parts, strict=True):
        if part.is_file():
            continue
        command = ["seqpolicy-eval", "--env", "Hopper-v4", "--agent", name, "--episodes", str(hi - lo),
                   "--seed", str(lo), "--n-envs", str(min(n_envs, hi - lo)), "--no-video", "--json", str(part)]
        print("$ " + shlex.join(command), flush=True)
        procs.append(subprocess.Popen(command, cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1"}))
    if any(p.wait() for p in procs):
        sys.exit(f"{name}: an evaluation shard failed (finished shards are kept in {RESULTS / 'shards'}).")
    merged = merge_results([EvalResult.from_dict(json.loads(p.read_text())["evaluation"]) for p in parts])
    saved.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(saved, {**merged.to_dict(), "compare_settings": settings, "shards": [p.name for p in parts]})
    print(f"{name}: {merged.summary()}", flush=True)


def videos(agents: list[str]) -> None:
    """One seed-0 episode per agent with seqpolicy-eval (the preset's size and fast rendering), renamed to
    videos/Hopper-v4/<name>.mp4."""
    import tempfile

    folder = REPO / "videos" / "Hopper-v4"
    folder.mkdir(parents=True, exist_ok=True)
    for name in agents or list(load_preset()["agents"]) + ["random"]:
        with tempfile.TemporaryDirectory() as tmp:
            command = ["seqpolicy-eval", "--env", "Hopper-v4", "--agent", name, "--episodes", "1", "--seed", "0",
                       "--video-dir", tmp]
            print("$ " + shlex.join(command), flush=True)
            subprocess.run(command, cwd=REPO, check=True)
            (video,) = Path(tmp).glob("*.mp4")
            shutil.move(video, folder / f"{name}.mp4")
        print(f"{name}: {folder / f'{name}.mp4'} ({(folder / f'{name}.mp4').stat().st_size / 1e3:.0f} kB)")


def cards() -> None:
    """<name>.json per agent (command, seed, data, steps, wall time, machine, 100-episode scores), a Hugging Face
    model card (README.md) in every agent folder made from it, AGENTS.md."""
    from seqpolicy.common.model_card import model_card

    preset = load_preset()
    rows = []
    for name, rel in preset["agents"].items():
        path = HERE / rel
        result_file = RESULTS / "results" / f"{name}.json"
        if not path.exists() or not result_file.is_file():
            print(f"{name}: skipped ({'no artifact' if not path.exists() else 'not evaluated yet'})")
            continue
        result = json.loads(result_file.read_text())
        card_path = HERE / f"{rel.removesuffix('.zip')}.json" if rel.endswith(".zip") else HERE / f"{rel}.json"
        card = json.loads(card_path.read_text()) if card_path.is_file() else {}
        card.update({"name": name, "artifact": rel, "files": {}})  # files: once README.md is written
        recipe = preset["training"].get(name)
        if recipe:
            meta = json.loads((path / "agent.json").read_text())
            info = meta.get("info", {})
            card.update({"kind": meta.get("kind"), "command": recipe["command"], "then": recipe.get("then"),
                         "shipped": f"{recipe.get('ship', 'agent')}/ of the run", "dataset": meta.get("dataset_id"),
                         "seed": info.get("train_config", {}).get("seed"), "train_steps": info.get("train_steps"),
                         "train_wall_time_s": info.get("train_wall_time_s"), "train_device": info.get("device"),
                         "hyperparameters": info.get("train_config"), "target_return": meta.get("target_return")})
            if meta.get("planner"):
                card["planner"] = {"settings": meta["planner"], **preset.get("planner", {}).get(name, {})}
            calibration = HERE / f"{rel}-calibration.png"
            if calibration.is_file():
                card["calibration"] = {"plot": calibration.name, "sweep": f"{rel}-calibration.json",
                                       "episodes_seeds_from": CALIBRATION_SEED}
        norm = result.get("normalized") or {}
        card["evaluation"] = {
            "command": (f"seqpolicy-compare --env Hopper-v4 --agents {name} --episodes {len(result['returns'])} "
                        f"--seed 0 --n-envs {result['n_envs']}" + (f" (split over {len(result['shards'])} processes "
                        "by make_agents.py evaluate --shards)" if "shards" in result else "")),
            "episodes": len(result["returns"]), "seeds": f"{result['seeds'][0]}-{result['seeds'][-1]}",
            "mean": result["mean"], "std": result["std"], "ci95": result["ci95"],
            "d4rl_normalized": norm.get("mean"), "d4rl_normalized_ci95": norm.get("ci95"),
            "mean_length": sum(result["lengths"]) / len(result["lengths"]), "wall_s": result["wall_time_s"],
            "n_envs": result["n_envs"], "versions": result["versions"],
        }
        for key in ("goal", "notes"):
            if key in (recipe or {}):
                card[key] = recipe[key]
        if path.is_dir():  # the folder can go to the Hugging Face Hub as it is
            (path / "README.md").write_text(model_card(card, preset["env_id"]))
        card["files"] = files_of(path)
        atomic_write_json(card_path, card)
        rows.append((name, card))
        print(f"{name}: {card_path.name}")
    write_markdown(rows)


NOTES_HEADING = "## Notes and history"  # AGENTS.md from this heading on is written by hand and kept as it is


def write_markdown(rows: list[tuple[str, dict]]) -> None:
    path = HERE / "AGENTS.md"
    old = path.read_text() if path.is_file() else ""
    notes = old[old.index(NOTES_HEADING):] if NOTES_HEADING in old else ""
    lines = ["# Hopper-v4 zoo agents", "",
             "Written by `python envs/Hopper-v4/make_agents.py cards` from the cards (`<name>.json`) and the "
             "100-episode evaluation in `results/` (seeds 0-99, `seqpolicy-compare`); the notes at the end are "
             "written by hand.", "",
             "| agent | dataset | return mean +- std | 95% CI | D4RL score | train steps | train wall time |",
             "| --- | --- | ---: | --- | ---: | ---: | ---: |"]
    for name, card in rows:
        e = card["evaluation"]
        wall = card.get("train_wall_time_s")
        lines.append(f"| {name} | {card.get('dataset') or 'online RL (see card)'} | {e['mean']:.1f} +- {e['std']:.1f} "
                     f"| {e['ci95'][0]:.1f} to {e['ci95'][1]:.1f} | {e['d4rl_normalized']:.1f} "
                     f"| {card.get('train_steps') or '-'} | {f'{wall / 60:.0f} min' if wall else '-'} |")
    lines += ["", "## Commands", ""]
    for name, card in rows:
        if "command" in card:
            then = "".join(f", then `{c}`" for c in card.get("then") or [])
            lines.append(f"- `{name}`: `{card['command']}`{then}")
    path.write_text("\n".join(lines) + "\n" + (f"\n{notes}" if notes else ""))
    print("AGENTS.md written")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="step", required=True)
    for step in ("train", "ship"):
        sub.add_parser(step).add_argument("name", help="an agent with a 'training' entry in preset.json")
    c = sub.add_parser("calibrate")
    c.add_argument("name")
    c.add_argument("--targets", type=float, nargs="*", default=[])
    c.add_argument("--episodes", type=int, default=5)
    e = sub.add_parser("evaluate")
    e.add_argument("--episodes", type=int, default=100)
    e.add_argument("--n-envs", type=int, default=10)
    e.add_argument("--shards", type=int, default=1, help="processes per agent, each with a share of the seeds")
    e.add_argument("--agents", nargs="*", default=[], help="default: every agent in preset.json, then random")
    sub.add_parser("cards")
    sub.add_parser("resave").add_argument("names", nargs="*", help="default: every preset agent with a folder")
    sub.add_parser("videos").add_argument("agents", nargs="*", help="default: every preset agent, then random")
    args = p.parse_args(argv)
    if args.step == "train":
        train(args.name)
    elif args.step == "ship":
        ship(args.name)
    elif args.step == "calibrate":
        calibrate(args.name, args.targets, args.episodes)
    elif args.step == "evaluate":
        evaluate(args.episodes, args.n_envs, args.shards, args.agents)
    elif args.step == "videos":
        videos(args.agents)
    elif args.step == "resave":
        resave(args.names)
    else:
        cards()
    return 0


if __name__ == "__main__":
    sys.exit(main())
