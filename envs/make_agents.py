"""Train, calibrate, evaluate and ship a zoo env's agents; write their cards and AGENTS.md.

Every agent is made by the command recorded under ``training`` in ``envs/<EnvId>/manifest.json`` (this script only
runs it, copies the result into the env folder and describes it); what is said about it in words (its goal, notes,
why its planner) is written by hand in the env's AGENTS.md, from where ``cards`` copies it into the card. The
steps, in order, e.g. for Hopper-v4:

    python envs/make_agents.py --env Hopper-v4 train dt      # the manifest's command (the card has its wall time)
    python envs/make_agents.py --env Hopper-v4 ship dt       # copy the run's agent (or best/) -> dt-medium/
    python envs/make_agents.py --env Hopper-v4 calibrate dt  # target sweep on seeds 1000+ -> research/calibration/
    python envs/make_agents.py --env Hopper-v4 evaluate      # seqpolicy-compare, 100 episodes, seeds 0-99 -> results/
    python envs/make_agents.py --env Hopper-v4 report tt     # a TT's next-token prediction report -> its card
    python envs/make_agents.py --env Hopper-v4 cards         # <artifact>/card.json, README.md model cards, AGENTS.md
    python envs/make_agents.py --env Hopper-v4 videos        # videos/Hopper-v4/<name>.mp4, one episode (seed 0) each

Names are the manifest's agent names (dt, dt-medium-expert, tt, bc; td3 and td3-medium come from
make_datasets.py and are only evaluated here); ``evaluate``, ``cards`` and ``videos`` skip agents not built yet.
What goes where in ``envs/<EnvId>/`` is in :mod:`seqpolicy.zoo`'s docstring: each agent's folder holds its card
(``card.json``), ``results/`` the evaluation (``comparison.*`` and ``<agent>.json``), ``research/`` the sweeps;
``evaluate --shards`` keeps its shards, a resume cache, in ``runs/eval-shards/<EnvId>/`` (not committed).

``python envs/make_agents.py --env ENV resave [NAMES]`` writes shipped agents again in the current artifact
layout (DT/TT folders that transformers also loads), checking that every weight is unchanged; run ``cards``
after it (the files' sha256 change, and so does seqpolicy-compare's --resume key).

The datasets come first: ``python envs/make_datasets.py --env ENV`` (see envs/<EnvId>/DATASETS.md).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from zoo_common import REPO, env_folder, evaluated_other_files, machine, read_manifest, sha256, zoo_envs

from seqpolicy.common.artifact import atomic_write_json
from seqpolicy.evaluation.calibrate import CALIBRATION_SEED  # sweeps use episodes evaluations (0-99) do not
from seqpolicy.zoo import CARD_FILE, RESEARCH_FOLDER, RESULTS_FOLDER, compare_settings, manifest_file, read_card
from seqpolicy.zoo import card_path as artifact_card_path


@dataclass(frozen=True)
class EnvZoo:
    """One env's zoo folder (``envs/<EnvId>/``) and its manifest, which every step reads."""

    folder: Path

    @property
    def manifest(self) -> dict:
        return read_manifest(self.folder)  # read at each use: a step may run for hours while it is edited

    @property
    def env_id(self) -> str:
        return self.manifest["env_id"]

    @property
    def results(self) -> Path:
        """seqpolicy-compare's output: comparison.md/.json/.png and each agent's <agent>.json beside them."""
        return self.folder / RESULTS_FOLDER

    @property
    def calibration(self) -> Path:
        """The DTs' target sweeps: <artifact>.json and <artifact>.png."""
        return self.folder / RESEARCH_FOLDER / "calibration"

    def shards(self, root: Path | None = None) -> Path:
        """Where ``evaluate --shards`` keeps finished shards (a resume cache): ``root`` (default runs/eval-shards,
        which git ignores)/<EnvId>/."""
        return (root or REPO / "runs" / "eval-shards") / self.folder.name

    def recipe(self, name: str) -> dict:
        recipes = self.manifest.get("training", {})
        if name not in recipes:
            sys.exit(f"{self.env_id} has no training recipe {name!r} in {manifest_file(self.folder)} "
                     f"(recipes: {', '.join(recipes) or 'none'}).")
        return recipes[name]

    def run_dir(self, name: str) -> Path:
        command = shlex.split(self.recipe(name)["command"])
        return REPO / command[command.index("--out") + 1]

    def built(self) -> list[str]:
        """The manifest's agents whose artifact exists, in the manifest's order."""
        return [n for n, rel in self.manifest["agents"].items() if (self.folder / rel).exists()]


def files_of(zoo: EnvZoo, path: Path) -> dict[str, dict]:
    """Size and sha256 of an artifact's files by path in the env folder (the card, which holds them, aside)."""
    files = sorted(path.rglob("*")) if path.is_dir() else [path]
    return {f.relative_to(zoo.folder).as_posix(): {"bytes": f.stat().st_size, "sha256": sha256(f)}
            for f in files if f.is_file() and f != artifact_card_path(path)}


# -- steps --------------------------------------------------------------------------------------------------

def commands(zoo: EnvZoo, name: str) -> list[str]:
    """The recorded training commands: ``command``, then any ``then`` commands (runs continued with --resume)."""
    recipe = zoo.recipe(name)
    return [recipe["command"], *recipe.get("then", [])]


def train(zoo: EnvZoo, name: str) -> None:
    """Run the recorded commands in order. A run folder with a checkpoint is resumed (--resume is added), so
    an interrupted run continues and a finished command only rewrites its agent."""
    from seqpolicy.training.common import find_checkpoint

    t0 = time.time()
    for command in commands(zoo, name):
        argv = shlex.split(command)
        if "--resume" not in argv and find_checkpoint(zoo.run_dir(name)) is not None:
            argv.append("--resume")
        print("$ " + shlex.join(argv), flush=True)
        subprocess.run(argv, cwd=REPO, check=True)
    print(f"{name}: trained in {time.time() - t0:.0f} s", flush=True)


def ship(zoo: EnvZoo, name: str) -> None:
    """Copy the run's agent into envs/<EnvId>/<artifact>/ (its agent.json keeps steps and wall time): the final
    one, or with ``"ship": "best"`` in the recipe the one --keep-best kept. Final weights take the run's held-out
    curve into the card, as a training seed's card has it (envs/seed_curves.py draws it with the other seeds')."""
    shipped = zoo.recipe(name).get("ship", "agent")
    source = zoo.run_dir(name) / shipped
    if not (source / "agent.json").is_file():
        sys.exit(f"{source} has no agent.json: train it first "
                 f"(python envs/make_agents.py --env {zoo.env_id} train {name}).")
    target = zoo.folder / zoo.manifest["agents"][name]
    card = read_card(target) or {}  # the card stays: the new files' part is written by `cards`
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(source, tmp)
    planner = zoo.manifest.get("planner", {}).get(name)
    if planner:  # the zoo's planner settings for this TT, stored in the artifact
        from seqpolicy.agents.tt.agent import TrajectoryTransformerAgent

        TrajectoryTransformerAgent.load(tmp, **planner.get("overrides", {})).save(tmp)
    if target.exists():
        shutil.rmtree(target)
    os.replace(tmp, target)
    curve = {}
    if shipped == "agent":  # final weights: the run's held-out curve, as a seed's card
        from make_seeds import curve_record

        curve = curve_record(zoo.run_dir(name), zoo.recipe(name)["command"])
    atomic_write_json(card_path(zoo, zoo.manifest["agents"][name]), {**card, "trained_on": machine(), **curve})
    print(f"{name}: {source} -> {target} ({sum(f.stat().st_size for f in target.iterdir()) / 1e6:.1f} MB)")


def resave(zoo: EnvZoo, names: list[str]) -> None:
    """Load each shipped agent folder and save it again (the current artifact layout), keeping its README.md;
    refuse if any weight or action would change."""
    import numpy as np
    import torch

    from seqpolicy.agents.loading import load_agent

    manifest = zoo.manifest
    for name in names or [n for n, rel in manifest["agents"].items() if (zoo.folder / rel / "agent.json").is_file()]:
        folder = zoo.folder / manifest["agents"][name]
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
        for description in ("README.md", CARD_FILE):
            if (folder / description).is_file():
                shutil.copy2(folder / description, tmp / description)
        shutil.rmtree(folder)
        os.replace(tmp, folder)
        print(f"{name}: {folder} re-saved ({', '.join(sorted(p.name for p in folder.iterdir()))}); weights unchanged")


def calibrate(zoo: EnvZoo, name: str, targets: list[float], episodes: int) -> None:
    """seqpolicy-calibrate on seeds CALIBRATION_SEED.., the sweep and its PNG in research/calibration/, the best
    target saved in the agent."""
    folder = zoo.folder / zoo.manifest["agents"][name]
    zoo.calibration.mkdir(parents=True, exist_ok=True)
    command = ["seqpolicy-calibrate", "--agent", str(folder), "--env", zoo.env_id, "--episodes", str(episodes),
               "--seed", str(CALIBRATION_SEED), "--n-envs", str(episodes), "--plot",
               str(zoo.calibration / f"{folder.name}.png"),
               "--json", str(zoo.calibration / f"{folder.name}.json"), "--save", "--threads", "1"]
    if targets:
        command += ["--targets", *map(str, targets)]
    print("$ " + shlex.join(command), flush=True)
    subprocess.run(command, cwd=REPO, check=True)


def evaluate(zoo: EnvZoo, episodes: int, n_envs: int, shards: int, agents: list[str], jobs: int | None = None,
             shard_dir: Path | None = None) -> None:
    """100 episodes per agent, seeds 0-99; with --shards N each agent's seeds are split over N processes, at
    most ``jobs`` at a time (merged into the file seqpolicy-compare would write); then seqpolicy-compare reuses
    them for the table. A finished shard is kept, so an interrupted evaluation loses only its running shards."""
    every = [*zoo.built(), "random"]  # in the manifest's order
    names = agents or every
    settings = {n: compare_settings(zoo.env_id, n, episodes, 0, None) for n in dict.fromkeys([*every, *names])}

    def current(name: str) -> bool:  # its saved result is the evaluation of these files and settings
        saved = zoo.results / f"{name}.json"
        return saved.is_file() and json.loads(saved.read_text()).get("compare_settings") == settings[name]

    if shards > 1:
        for name in names:
            if not current(name):
                evaluate_sharded(zoo, name, episodes, n_envs, shards, zoo.results / f"{name}.json",
                                 settings[name], jobs or shards, shard_dir)
    # The comparison table keeps the other agents whose saved results are current (reused, not re-run), so
    # evaluating some agents does not drop the rest from comparison.md/.json/.png.
    table = [n for n in every if n in names or current(n)] + [n for n in names if n not in every]
    command = ["seqpolicy-compare", "--env", zoo.env_id, "--episodes", str(episodes), "--seed", "0",
               "--n-envs", str(n_envs), "--threads", "1", "--out", str(zoo.results), "--resume", "--agents", *table]
    print("$ " + shlex.join(command), flush=True)
    subprocess.run(command, cwd=REPO, check=True)


def evaluate_sharded(zoo: EnvZoo, name: str, episodes: int, n_envs: int, shards: int, saved: Path,
                     settings: dict, jobs: int, shard_dir: Path | None = None) -> None:
    from seqpolicy.evaluation.evaluate import EvalResult, merge_results

    bounds = [episodes * k // shards for k in range(shards + 1)]
    cache = zoo.shards(shard_dir)
    parts = [cache / f"{name}-{lo}-{hi - 1}.json" for lo, hi in itertools.pairwise(bounds)]
    made_with = cache / f"{name}.settings.json"  # finished shards are reused only for the same agent
    if not made_with.is_file() or json.loads(made_with.read_text()) != settings:
        for part in parts:
            part.unlink(missing_ok=True)
        atomic_write_json(made_with, settings)
    todo = [(lo, hi, part) for (lo, hi), part in zip(itertools.pairwise(bounds), parts, strict=True)
            if not part.is_file()]
    if len(todo) < shards:
        print(f"{name}: {shards - len(todo)} of {shards} shards already done (reused)", flush=True)
    running: list[subprocess.Popen] = []
    failed = False
    for lo, hi, part in todo:
        while len(running) >= jobs:  # a free slot first: at most `jobs` processes at once
            failed |= _wait_any(running) != 0
        command = ["seqpolicy-eval", "--env", zoo.env_id, "--agent", name, "--episodes", str(hi - lo),
                   "--seed", str(lo), "--n-envs", str(min(n_envs, hi - lo)), "--threads", "1", "--workers", "1",
                   "--no-video", "--json", str(part)]  # the shards are the workers
        print("$ " + shlex.join(command), flush=True)
        running.append(subprocess.Popen(command, cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1"}))
    while running:
        failed |= _wait_any(running) != 0
    if failed:
        sys.exit(f"{name}: an evaluation shard failed (finished shards are kept in {cache}).")
    merged = merge_results([EvalResult.from_dict(json.loads(p.read_text())["evaluation"]) for p in parts])
    saved.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(saved, {**merged.to_dict(), "compare_settings": settings, "shards": [p.name for p in parts]})
    print(f"{name}: {merged.summary()}", flush=True)


def _wait_any(procs: list[subprocess.Popen]) -> int:
    """Wait until one of ``procs`` ends, remove it from the list and return its exit code."""
    while True:
        for p in procs:
            if p.poll() is not None:
                procs.remove(p)
                return p.returncode
        time.sleep(1.0)


def videos(zoo: EnvZoo, agents: list[str]) -> None:
    """One seed-0 episode per agent with seqpolicy-eval (the manifest's size and fast rendering), renamed to
    videos/<EnvId>/<name>.mp4."""
    import tempfile

    folder = REPO / "videos" / zoo.folder.name
    folder.mkdir(parents=True, exist_ok=True)
    for name in agents or [*zoo.built(), "random"]:
        with tempfile.TemporaryDirectory() as tmp:
            command = ["seqpolicy-eval", "--env", zoo.env_id, "--agent", name, "--episodes", "1", "--seed", "0",
                       "--threads", "1", "--video-dir", tmp]
            print("$ " + shlex.join(command), flush=True)
            subprocess.run(command, cwd=REPO, check=True)
            (video,) = Path(tmp).glob("*.mp4")
            shutil.move(video, folder / f"{name}.mp4")
        print(f"{name}: {folder / f'{name}.mp4'} ({(folder / f'{name}.mp4').stat().st_size / 1e3:.0f} kB)")


def report(zoo: EnvZoo, name: str, windows: int) -> None:
    """The TT's prediction report (seqpolicy-tt-report) on windows of its own dataset, into its card's
    ``prediction_report`` (kept by ``cards``, which renders it in the folder's README.md: run cards after)."""
    from seqpolicy.agents.loading import load_agent
    from seqpolicy.data.minari_io import minari_root
    from seqpolicy.evaluation.prediction import prediction_report

    rel = zoo.manifest["agents"][name]
    agent = load_agent(zoo.folder / rel)
    if getattr(agent, "kind", None) != "tt":
        raise SystemExit(f"{name} is not a Trajectory Transformer: the report reads a TT's token predictions.")
    command = f"seqpolicy-tt-report --env {zoo.env_id} --agent {name} --windows {windows} --seed 0"
    print(f"$ {command}", flush=True)
    result = prediction_report(agent, agent.dataset_id, n_windows=windows, seed=0, env_id=zoo.env_id)
    table = result.to_markdown()
    print(table)
    data_sha = sha256(minari_root() / agent.dataset_id / "data" / "main_data.hdf5")
    dataset_card = zoo.folder / "datasets" / f"{agent.dataset_id.rsplit('/', 1)[-1].removesuffix('-v0')}.json"
    built = json.loads(dataset_card.read_text()).get("file_sha256") if dataset_card.is_file() else None
    data = (f"windows of {agent.dataset_id}, every episode of which the model was trained on (training windows, "
            "not a held-out split)")
    if built != data_sha:
        data += (f"; the local store's file (sha256 {data_sha[:8]}...) is not the build {dataset_card.name} records"
                 f" ({(built or 'none')[:8]}...): rebuilt data, so the windows may differ from the training ones")
    path = card_path(zoo, rel)
    card = read_card(zoo.folder / rel) or {}
    weights = json.loads((zoo.folder / rel / "agent.json").read_text()).get("weights_sha256")
    old = card.get("prediction_report") or {}
    card["prediction_report"] = {
        "command": command, "data": data, "dataset_file_sha256": data_sha, "weights_sha256": weights,
        "wall_s": round(result.wall_s, 1), "machine": machine(), "table": table,
        # notes written by hand about these weights stay; a retrained model's are dropped
        **({"notes": old["notes"]} if old.get("notes") and old.get("weights_sha256") == weights else {}),
        "report": result.to_json()}
    atomic_write_json(path, card)
    print(f"{name}: prediction_report in {path.name} ({result.wall_s:.0f} s); run cards next")


def card_path(zoo: EnvZoo, rel: str) -> Path:
    """An artifact's card: ``card.json`` in the agent's folder, or beside an SB3 zip in its own folder
    (td3-expert/td3-expert.zip -> td3-expert/card.json)."""
    return artifact_card_path(zoo.folder / rel)


def cards(zoo: EnvZoo) -> None:
    """card.json per agent (command, seed, data, steps, wall time, machine, 100-episode scores), a Hugging Face
    model card (README.md) in every agent folder made from it, AGENTS.md."""
    from seqpolicy.common.model_card import model_card

    manifest = zoo.manifest
    prose = agent_prose(zoo.folder, manifest)
    rows = []
    for name, rel in manifest["agents"].items():
        path = zoo.folder / rel
        result_file = zoo.results / f"{name}.json"
        if not path.exists() or not result_file.is_file():
            print(f"{name}: skipped ({'no artifact' if not path.exists() else 'not evaluated yet'})")
            continue
        result = json.loads(result_file.read_text())
        if evaluated_other_files(zoo.folder, zoo.env_id, name):
            print(f"{name}: skipped ({result_file.name} is the evaluation of other files: re-ship or run evaluate)")
            continue
        path_of_card = card_path(zoo, rel)
        card = read_card(path) or {}  # also a card of the layout before, beside the folder
        card.update({"name": name, "artifact": rel, "files": {}})  # files: once README.md is written
        recipe = manifest.get("training", {}).get(name)
        if recipe:
            meta = json.loads((path / "agent.json").read_text())
            info = meta.get("info", {})
            card.update({"kind": meta.get("kind"), "command": recipe["command"], "then": recipe.get("then"),
                         "shipped": f"{recipe.get('ship', 'agent')}/ of the run", "dataset": meta.get("dataset_id"),
                         "seed": info.get("train_config", {}).get("seed"), "train_steps": info.get("train_steps"),
                         "train_wall_time_s": info.get("train_wall_time_s"), "train_device": info.get("device"),
                         "hyperparameters": info.get("train_config"), "target_return": meta.get("target_return")})
            if meta.get("planner"):
                why = {"why": prose[name]["why"]} if "why" in prose.get(name, {}) else {}
                card["planner"] = {"settings": meta["planner"], **manifest.get("planner", {}).get(name, {}), **why}
            calibration = zoo.calibration / f"{path.name}.png"
            if calibration.is_file():  # paths in the env folder, as the files' are
                card["calibration"] = {"plot": calibration.relative_to(zoo.folder).as_posix(),
                                       "sweep": calibration.with_suffix(".json").relative_to(zoo.folder).as_posix(),
                                       "episodes_seeds_from": CALIBRATION_SEED}
        norm = result.get("normalized") or {}
        card["evaluation"] = {
            "command": (f"seqpolicy-compare --env {zoo.env_id} --agents {name} --episodes {len(result['returns'])} "
                        f"--seed 0 --n-envs {result['n_envs']}" + (f" (split over {len(result['shards'])} processes "
                        "by make_agents.py evaluate --shards)" if "shards" in result else "")),
            "episodes": len(result["returns"]), "seeds": f"{result['seeds'][0]}-{result['seeds'][-1]}",
            "mean": result["mean"], "std": result["std"], "ci95": result["ci95"],
            "d4rl_normalized": norm.get("mean"), "d4rl_normalized_ci95": norm.get("ci95"),
            "mean_length": sum(result["lengths"]) / len(result["lengths"]), "wall_s": result["wall_time_s"],
            "n_envs": result["n_envs"], "versions": result["versions"],
        }
        for key in ("goal", "notes"):  # written by hand in AGENTS.md; a card keeps no prose AGENTS.md lost
            if key in prose.get(name, {}):
                card[key] = prose[name][key]
            else:
                card.pop(key, None)
        if path.is_dir():  # the folder can go to the Hugging Face Hub as it is
            (path / "README.md").write_text(model_card(card, zoo.env_id))
        card["files"] = files_of(zoo, path)
        atomic_write_json(path_of_card, card)
        rows.append((name, card))
        print(f"{name}: {path_of_card.relative_to(zoo.folder)}")
    if rows:
        write_markdown(zoo.folder, zoo.env_id, rows)
    else:
        print(f"AGENTS.md not written: no agent of {zoo.env_id} is built and evaluated yet")


# AGENTS.md: the title and everything outside the generated block are written by hand and kept as they are;
# `cards` rewrites only the block between these markers (the table and the commands, from the cards).
BEGIN, END = "<!-- generated: begin -->", "<!-- generated: end -->"
PROSE_HEADING = "## Goals and notes per agent"
"""The hand-written section of AGENTS.md that holds what is said about each agent: ``### <name>``, then a
paragraph per field, ``Goal: ...``, ``Notes: ...`` (into the card's "goal" and "notes" and its model card) and
``Why: ...`` (why the agent's planner, into the card's ``planner.why``); a paragraph's lines are joined with
single spaces. The one place of this prose: the manifest holds only what code reads."""
PROSE_FIELDS = {"Goal": "goal", "Notes": "notes", "Why": "why"}
NOTES_HEADING = "## Notes and history"  # the AGENTS.md layout before the markers: from this heading on, by hand


def agent_prose(folder: Path, manifest: dict) -> dict[str, dict[str, str]]:
    """Each agent's goal, notes and planner reason, by agent name, from the env's AGENTS.md
    (:data:`PROSE_HEADING`; none without it). SystemExit for a section or field it cannot place, and for prose
    still in the manifest (the layout before: it moves to AGENTS.md)."""
    left = [f"training.{n}.{k}" for n, r in manifest.get("training", {}).items() for k in ("goal", "notes") if k in r]
    left += [f"planner.{n}.why" for n, r in manifest.get("planner", {}).items() if "why" in r]
    if left:
        sys.exit(f"{manifest_file(folder)} holds prose ({', '.join(left)}): move it to {folder / 'AGENTS.md'}, "
                 f"under {PROSE_HEADING!r}, a '### <name>' section per agent with 'Goal: ', 'Notes: ' and 'Why: ' "
                 "paragraphs; the manifest keeps only what code reads.")
    path = folder / "AGENTS.md"
    text = path.read_text() if path.is_file() else ""
    if PROSE_HEADING not in text:
        return {}
    section = text.split(PROSE_HEADING, 1)[1]
    section = section.split("\n## ", 1)[0]  # up to the next second-level heading
    prose: dict[str, dict[str, str]] = {}
    for block in section.split("\n### ")[1:]:
        name, _, body = block.partition("\n")
        name = name.strip().strip("`")
        if name not in manifest.get("agents", {}):
            sys.exit(f"{path}: '### {name}' names no agent of {manifest_file(folder)} "
                     f"({', '.join(manifest.get('agents', {}))}).")
        for paragraph in body.strip().split("\n\n"):
            label, sep, rest = paragraph.partition(": ")
            if not sep or label not in PROSE_FIELDS:
                starts = ", ".join(f"'{k}: '" for k in PROSE_FIELDS)
                sys.exit(f"{path}, '### {name}': a paragraph must start with one of {starts} (got {paragraph[:40]!r}).")
            prose.setdefault(name, {})[PROSE_FIELDS[label]] = " ".join(rest.split("\n"))
    return prose


def write_markdown(folder: Path, env_id: str, rows: list[tuple[str, dict]]) -> None:
    """Rewrite the generated block of AGENTS.md (the table and the commands) and keep the rest as it is; a new
    AGENTS.md gets a title, the block and an empty :data:`PROSE_HEADING` section to fill in."""
    path = folder / "AGENTS.md"
    old = path.read_text() if path.is_file() else ""
    lines = [f"Written by `python envs/make_agents.py --env {env_id} cards` from the cards (`<artifact>/card.json`) "
             "and the 100-episode evaluation in `results/` (seeds 0-99, `seqpolicy-compare`); everything outside this "
             "block (the `generated` markers) is written by hand.", "",
             "| agent | dataset | return mean +- std | 95% CI | D4RL score | train steps | train wall time |",
             "| --- | --- | ---: | --- | ---: | ---: | ---: |"]
    for name, card in rows:
        e = card["evaluation"]
        wall = card.get("train_wall_time_s")
        score = "-" if e["d4rl_normalized"] is None else f"{e['d4rl_normalized']:.1f}"
        lines.append(f"| {name} | {card.get('dataset') or 'online RL (see card)'} | {e['mean']:.1f} +- {e['std']:.1f} "
                     f"| {e['ci95'][0]:.1f} to {e['ci95'][1]:.1f} | {score} "
                     f"| {card.get('train_steps') or '-'} | {f'{wall / 60:.0f} min' if wall else '-'} |")
    lines += ["", "## Commands", ""]
    for name, card in rows:
        if "command" in card:
            then = "".join(f", then `{c}`" for c in card.get("then") or [])
            lines.append(f"- `{name}`: `{card['command']}`{then}")
    block = "\n".join([BEGIN, *lines, END])
    if BEGIN in old and END in old:
        before, rest = old.split(BEGIN, 1)
        text = before + block + rest.split(END, 1)[1]
    else:  # a new AGENTS.md, or one of the layout before (generated above NOTES_HEADING)
        kept = old[old.index(NOTES_HEADING):] if NOTES_HEADING in old else ""
        text = f"# {env_id} zoo agents\n\n{block}\n\n{PROSE_HEADING}\n\n" + (f"{kept}" if kept else "")
    path.write_text(text)
    print("AGENTS.md written")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", required=True, help=f"a zoo env with a manifest.json: {', '.join(zoo_envs())}")
    sub = p.add_subparsers(dest="step", required=True)
    for step in ("train", "ship"):
        sub.add_parser(step).add_argument("name", help="an agent with a 'training' entry in manifest.json")
    c = sub.add_parser("calibrate")
    c.add_argument("name")
    c.add_argument("--targets", type=float, nargs="*", default=[])
    c.add_argument("--episodes", type=int, default=5)
    e = sub.add_parser("evaluate")
    e.add_argument("--episodes", type=int, default=100, help="episodes per agent, seeds 0.. (default 100)")
    e.add_argument("--n-envs", type=int, default=10, help="envs per process, planned or run as one batch; an env "
                   "plays its episodes one after another (default 10)")
    e.add_argument("--shards", type=int, default=1,
                   help="split each agent's seeds into N shards, one process each; a finished shard is kept in "
                        "--shard-dir (small JSON files: copy them to carry a long evaluation over to another "
                        "machine), so a rerun evaluates only the missing ones. A shard of no more "
                        "episodes than --n-envs runs as long as its longest episode (envs with nothing left to "
                        "play are paused: stepped, not planned for), so its batch thins out: for envs whose "
                        "episodes end early, prefer a few large shards (e.g. --shards 2 --jobs 2 on two cores)")
    e.add_argument("--jobs", type=int, default=None, help="shard processes at once (default: all of them)")
    e.add_argument("--shard-dir", type=Path, default=None, help="where finished shards are kept, in a folder per env "
                   "(default: runs/eval-shards/, which git ignores; the merged result goes to results/<agent>.json)")
    e.add_argument("--agents", nargs="*", default=[], help="default: every manifest agent built so far, then random")
    r = sub.add_parser("report", help="a TT's next-token prediction report into its card (then run cards)")
    r.add_argument("name")
    r.add_argument("--windows", type=int, default=10000)
    sub.add_parser("cards")
    sub.add_parser("resave").add_argument("names", nargs="*", help="default: every manifest agent with a folder")
    sub.add_parser("videos").add_argument("agents", nargs="*",
                                          help="default: every manifest agent built so far, then random")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.step == "evaluate" and (args.shards < 1 or (args.jobs is not None and args.jobs < 1)):
        parser.error("evaluate: --shards and --jobs must be >= 1")
    zoo = EnvZoo(env_folder(args.env))
    if args.step == "train":
        train(zoo, args.name)
    elif args.step == "ship":
        ship(zoo, args.name)
    elif args.step == "calibrate":
        calibrate(zoo, args.name, args.targets, args.episodes)
    elif args.step == "evaluate":
        evaluate(zoo, args.episodes, args.n_envs, args.shards, args.agents, args.jobs, args.shard_dir)
    elif args.step == "videos":
        videos(zoo, args.agents)
    elif args.step == "report":
        report(zoo, args.name, args.windows)
    elif args.step == "resave":
        resave(zoo, args.names)
    else:
        cards(zoo)
    return 0


if __name__ == "__main__":
    sys.exit(main())
