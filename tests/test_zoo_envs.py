"""The zoo's env folders (envs/<EnvId>/) and the scripts that build them, envs/make_datasets.py and
envs/make_agents.py: every env's manifest reads and holds recipes that fit it, a wheel ships every file, and the
scripts' parts work (one end-to-end dataset build on PointReach, rebuilt from its zips to the same checksums)."""

from __future__ import annotations

import configparser
import glob
import importlib.util
import json
import shlex
import shutil
import sys
from pathlib import Path

import gymnasium as gym
import pytest

from seqpolicy.evaluation.scores import d4rl_reference
from seqpolicy.zoo import load_manifest

REPO = Path(__file__).resolve().parent.parent
ENVS = REPO / "envs"
ENV_IDS = sorted(p.parent.name for p in ENVS.glob("*/manifest.json"))


def load_script(name: str):
    """envs/<name>.py as a module (the scripts import zoo_common from their own folder)."""
    if str(ENVS) not in sys.path:
        sys.path.insert(0, str(ENVS))
    if f"envs_{name}" not in sys.modules:
        spec = importlib.util.spec_from_file_location(f"envs_{name}", ENVS / f"{name}.py")
        sys.modules[spec.name] = importlib.util.module_from_spec(spec)  # dataclasses look their module up
        spec.loader.exec_module(sys.modules[spec.name])
    return sys.modules[f"envs_{name}"]


@pytest.fixture(autouse=True)
def _zoo_from_repo(monkeypatch):
    monkeypatch.delenv("SEQPOLICY_ENVS", raising=False)


def test_the_locomotion_trio_has_a_zoo_folder_each():
    assert {"Hopper-v4", "HalfCheetah-v4", "Walker2d-v4"} <= set(ENV_IDS)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_preset_reads_and_its_recipes_fit_the_env(env_id):
    from seqpolicy.cli.train import build_parser

    make_datasets = load_script("make_datasets")
    preset = load_manifest(env_id)
    doc = json.loads((ENVS / env_id / "manifest.json").read_text())
    assert preset.folder == ENVS / env_id and doc["env_id"] == env_id
    assert preset.default_agent in preset.agents and set(preset.training) <= set(preset.agents)
    recipe = make_datasets.DatasetRecipe.from_manifest(doc)
    assert recipe.env_id == env_id and recipe.namespace == f"seqpolicy/{env_id.lower()}"
    assert d4rl_reference(env_id) is not None
    # `seqpolicy-eval --env ENV` stays near a minute: HalfCheetah's 5 x 1000 steps with a DT and a 1000-frame
    # video took 25-33 s with 2 other jobs on the 2-core machine.
    assert preset.eval["episodes"] * gym.spec(env_id).max_episode_steps <= 5_000
    datasets = {recipe.dataset_id(name) for name in make_datasets.NAMES}
    for training in preset.training.values():
        for command in [training["command"], *training.get("then", [])]:
            argv = shlex.split(command)
            assert argv[0] == "seqpolicy-train", command
            args = build_parser().parse_args(argv[1:])  # exits on a flag seqpolicy-train does not know
            assert (args.env_id, args.dataset in datasets) == (env_id, True), command
            assert args.out.startswith("runs/zoo/"), command


def test_no_two_recipes_share_a_run_folder():
    """Two different commands never write one run folder; one run may ship two artifacts (odt and its offline
    start odt-pretrained come from the same command, shipping RUN/agent and RUN/pretrained)."""
    commands: dict[str, set[str]] = {}
    for env_id in ENV_IDS:
        for training in load_manifest(env_id).training.values():
            argv = shlex.split(training["command"])
            commands.setdefault(argv[argv.index("--out") + 1], set()).add(training["command"])
    assert all(len(c) == 1 for c in commands.values()), {out: c for out, c in commands.items() if len(c) > 1}


def test_setup_cfg_ships_every_zoo_file():
    """Every preset, card and shipped agent file of every env is in a wheel's data files, in its own folder; the
    env folder's top holds nothing else (the cards are in the agents' folders, research/ holds the rest)."""
    cfg = configparser.ConfigParser()
    cfg.optionxform = str  # keep the case of the target folders (setuptools does)
    cfg.read(REPO / "setup.cfg")
    shipped = set()
    for target, patterns in cfg["options.data_files"].items():
        for pattern in patterns.split():
            for f in glob.glob(str(REPO / pattern)):
                assert target == "share/seqpolicy/" + str(Path(f).parent.relative_to(REPO))
                shipped.add(Path(f))
    needed = set()
    for env_id in ENV_IDS:
        folder = ENVS / env_id
        needed |= {*folder.glob("*.json"), *folder.glob("*.md"), *folder.glob("datasets/*")}
        for rel in load_manifest(env_id).agents.values():
            path = folder / rel
            artifact = path if path.is_dir() else path.parent  # an SB3 zip: its folder, with its card
            needed |= set(artifact.iterdir()) if path.exists() else set()
            assert (artifact / "card.json").is_file() or not path.exists(), f"{path} has no card.json"
        agents = {(folder / rel).parts[len(folder.parts)] for rel in load_manifest(env_id).agents.values()}
        layout = {"manifest.json", "AGENTS.md", "DATASETS.md", "datasets", "results", "research", "seeds", *agents}
        assert {p.name for p in folder.iterdir()} <= layout, sorted({p.name for p in folder.iterdir()} - layout)
    assert not needed - shipped, f"not in setup.cfg [options.data_files]: {sorted(map(str, needed - shipped))}"


def test_dataset_recipe_takes_overrides_and_names_what_is_missing():
    make_datasets = load_script("make_datasets")
    doc = json.loads((ENVS / "Hopper-v4" / "manifest.json").read_text())
    recipe = make_datasets.DatasetRecipe.from_manifest(doc, steps=1000, run=None)
    assert (recipe.steps, recipe.run, recipe.train_minutes) == (1000, "runs/hopper-v4-td3", 108)
    assert recipe.dataset_id("medium-replay") == "seqpolicy/hopper-v4/medium-replay-v0"
    with pytest.raises(ValueError, match="Hopper-v4: manifest.json has no 'datasets' section"):
        make_datasets.DatasetRecipe.from_manifest({"env_id": "Hopper-v4"})
    del doc["datasets"]["baseline"]["max_minutes"], doc["datasets"]["namespace"]
    with pytest.raises(ValueError, match="'datasets' section lacks namespace, train_minutes"):
        make_datasets.DatasetRecipe.from_manifest(doc)
    with pytest.raises(ValueError, match="action_noise >= 0"):
        make_datasets.DatasetRecipe.from_manifest(json.loads((ENVS / "Hopper-v4" / "manifest.json").read_text()),
                                                action_noise=-0.1)


def test_dataset_summary_and_content_checksum():
    from seqpolicy.data.trajectories import Episode, Trajectories
    from seqpolicy.toy import make_toy_dataset

    make_datasets = load_script("make_datasets")
    data = make_toy_dataset(n_episodes=4)
    summary = make_datasets.dataset_summary(data, max_steps=50, reference=(0.0, 10.0))
    assert summary["transitions"] == sum(len(ep) for ep in data.episodes) and summary["episodes"] == 4
    assert summary["d4rl_normalized_mean_return"] == pytest.approx(10 * summary["return"]["mean"])
    assert make_datasets.dataset_summary(data, 50, None)["d4rl_normalized_mean_return"] is None
    same = make_datasets.content_sha256(Trajectories(list(data.episodes), env_id=data.env_id))
    assert make_datasets.content_sha256(data) == same  # the arrays, not the container or its metadata
    ep = data.episodes[0]
    changed = Episode(ep.observations, ep.actions, ep.rewards + 1.0, terminated=ep.terminated,
                      truncated=ep.truncated, final_observation=ep.final_observation)
    assert make_datasets.content_sha256(Trajectories([changed, *data.episodes[1:]], env_id=data.env_id)) != same


def test_hopper_datasets_md_is_what_markdown_only_writes(tmp_path):
    make_datasets = load_script("make_datasets")
    shutil.copytree(ENVS / "Hopper-v4" / "datasets", tmp_path / "datasets")
    assert make_datasets.main(["--env", "Hopper-v4", "--markdown-only", "--cards", str(tmp_path)]) == 0
    assert (tmp_path / "DATASETS.md").read_text() == (ENVS / "Hopper-v4" / "DATASETS.md").read_text()


def test_make_datasets_end_to_end_on_pointreach(tmp_path, monkeypatch, capsys):
    """A finished TD3 run -> zips, cards and the four datasets; then --from-zips rebuilds medium and expert with
    the same content checksums (collection is seeded)."""
    pytest.importorskip("stable_baselines3")
    from seqpolicy.data.sources import load_trajectories
    from seqpolicy.training.baseline import BaselineConfig, train_baseline

    make_datasets = load_script("make_datasets")
    env_id = "seqpolicy/PointReach-v0"
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    run = tmp_path / "run"
    train_baseline(BaselineConfig(env_id=env_id, algo="td3", steps=300, checkpoint_every=100, eval_episodes=2,
                                  keep_replay=True, overrides={"learning_starts": 50, "net_arch": [16, 16]}),
                   run, progress=False)
    run_doc = json.loads((run / "run.json").read_text())
    for checkpoint, score in zip(run_doc["checkpoints"], (1.0, 6.0, 9.0), strict=True):  # steps 100, 200, 300
        checkpoint["eval_return_mean"] = score  # so that the expert is step 300, the medium step 100 (~9 / 3)
    (run / "run.json").write_text(json.dumps(run_doc))
    folder = tmp_path / "envs" / "seqpolicy__PointReach-v0"
    folder.mkdir(parents=True)
    preset = {"env_id": env_id, "datasets": {"namespace": "test/pointreach", "steps": 120, "action_noise": 0.1,
                                             "baseline": {"algo": "td3", "run": str(run), "steps": 300,
                                                          "max_minutes": 1}}}
    recipe = make_datasets.DatasetRecipe.from_manifest(preset)
    args = make_datasets.build_parser().parse_args(["--env", env_id, "--eval-episodes", "2"])
    make_datasets.build(recipe, folder, folder, "python envs/make_datasets.py ...", args)

    cards = {n: json.loads((folder / "datasets" / f"{n}.json").read_text()) for n in make_datasets.NAMES}
    for role, step in (("expert", 300), ("medium", 100)):
        card = json.loads((folder / f"td3-{role}" / "card.json").read_text())
        assert card["checkpoint"]["step"] == step and card["sha256"] and "pickle-based" in card["warning"]
        policy = folder / f"td3-{role}" / f"td3-{role}.zip"
        assert policy.read_bytes() == (run / card["checkpoint"]["zip"]).read_bytes()
    assert cards["medium-replay"]["transitions"] == 100
    assert cards["medium"]["transitions"] == cards["expert"]["transitions"] == 120
    assert cards["medium-expert"]["transitions"] == 240
    assert cards["medium"]["machine"] and cards["medium"]["versions"]["mujoco"]
    assert cards["medium"]["d4rl_normalized_mean_return"] is None  # D4RL has no PointReach references
    assert len(load_trajectories("test/pointreach/medium-replay-v0")) == cards["medium-replay"]["episodes"]
    assert "`test/pointreach/medium-expert-v0` | 240 |" in (folder / "DATASETS.md").read_text()

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari-rebuilt"))
    args = make_datasets.build_parser().parse_args(["--env", env_id, "--eval-episodes", "2", "--from-zips"])
    make_datasets.build(recipe, folder, tmp_path / "rebuilt", "python envs/make_datasets.py ...", args)
    for name in ("medium", "expert", "medium-expert"):
        rebuilt = json.loads((tmp_path / "rebuilt" / "datasets" / f"{name}.json").read_text())
        assert rebuilt["content_sha256"] == cards[name]["content_sha256"], name
    assert not (tmp_path / "rebuilt" / "datasets" / "medium-replay.json").exists()

    # The command as the README gives it (no --cards) checks the committed cards and leaves them as they are:
    # the reference returns it measures differ in the last bits between CPUs.
    (folder / "manifest.json").write_text(json.dumps(preset))
    committed = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    monkeypatch.setattr(make_datasets, "env_folder", lambda env: folder)
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari-readme"))
    assert make_datasets.main(["--env", env_id, "--eval-episodes", "2", "--from-zips"]) == 0
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == committed
    out = capsys.readouterr().out
    assert "test/pointreach/medium-v0: same data as the committed card" in out
    assert "reference sb3_expert:" in out

    # --medium-replay-only trains again with the committed medium card's settings (seed, overrides) up to its
    # step: on the same machine the buffer is the original run's, checked against the committed card.
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari-replay"))
    assert make_datasets.main(["--env", env_id, "--medium-replay-only", "--run", str(tmp_path / "run2")]) == 0
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == committed
    assert json.loads((tmp_path / "run2" / "run.json").read_text())["steps"] == 100
    out = capsys.readouterr().out
    assert "test/pointreach/medium-replay-v0: same data as the committed card" in out
    assert "medium-v0" not in out.replace("medium-replay-v0", "")  # nothing else was built
    with pytest.raises(SystemExit, match="already in"):  # the store holds it now
        make_datasets.main(["--env", env_id, "--medium-replay-only", "--run", str(tmp_path / "run2")])
    # Adopted into the env folder (--cards), the card and DATASETS.md say how it was made and set the new run's
    # checkpoint beside the committed medium policy (whose evaluation this test rewrote to 1.0 above, so the
    # two read as different runs).
    assert make_datasets.main(["--env", env_id, "--medium-replay-only", "--run", str(tmp_path / "run2"), "--cards",
                               str(folder), "--overwrite"]) == 0
    card = json.loads((folder / "datasets" / "medium-replay.json").read_text())
    assert card["content_sha256"] == cards["medium-replay"]["content_sha256"] and card["baseline_run"]["steps"] == 100
    assert "medium-replay was made again" in (folder / "DATASETS.md").read_text()
    assert "against the committed medium policy's 1.0: another run" in (folder / "DATASETS.md").read_text()


def test_make_agents_reads_recipes_from_the_env_preset(tmp_path):
    make_agents = load_script("make_agents")
    zoo = make_agents.EnvZoo(ENVS / "HalfCheetah-v4")
    assert zoo.env_id == "HalfCheetah-v4" and zoo.results == ENVS / "HalfCheetah-v4" / "results"
    assert zoo.run_dir("dt") == REPO / "runs" / "zoo" / "halfcheetah-v4" / "dt-medium"
    assert make_agents.commands(zoo, "tt") == [zoo.manifest["training"]["tt"]["command"]]
    with pytest.raises(SystemExit, match="HalfCheetah-v4 has no training recipe 'td3'"):
        zoo.recipe("td3")
    (tmp_path / "HalfCheetah-v4").mkdir()
    shutil.copy(ENVS / "HalfCheetah-v4" / "manifest.json", tmp_path / "HalfCheetah-v4")
    bare = make_agents.EnvZoo(tmp_path / "HalfCheetah-v4")
    assert bare.built() == []
    (tmp_path / "HalfCheetah-v4" / "td3-expert").mkdir()
    (tmp_path / "HalfCheetah-v4" / "td3-expert" / "td3-expert.zip").write_bytes(b"PK")
    assert bare.built() == ["td3"]
    with pytest.raises(SystemExit, match="must be one of .*HalfCheetah-v4.*Walker2d-v4"):
        make_agents.main(["--env", "Ant-v4", "cards"])


def test_hopper_agents_md_keeps_its_hand_written_notes_and_is_current(tmp_path):
    """make_agents.py cards rewrites AGENTS.md's generated block (table and commands) from the cards and keeps
    everything outside it, written by hand; the committed AGENTS.md is what it writes."""
    make_agents = load_script("make_agents")
    hopper = ENVS / "Hopper-v4"
    committed = (hopper / "AGENTS.md").read_text()
    assert make_agents.NOTES_HEADING in committed
    zoo = make_agents.EnvZoo(hopper)
    rows = [(name, json.loads(make_agents.card_path(zoo, rel).read_text()))
            for name, rel in zoo.manifest["agents"].items()]
    (tmp_path / "AGENTS.md").write_text(committed)
    make_agents.write_markdown(tmp_path, "Hopper-v4", rows)
    assert (tmp_path / "AGENTS.md").read_text() == committed
    (tmp_path / "AGENTS.md").write_text("# an old one without notes\n")
    make_agents.write_markdown(tmp_path, "Hopper-v4", rows)
    new = (tmp_path / "AGENTS.md").read_text()
    assert make_agents.NOTES_HEADING not in new and make_agents.PROSE_HEADING in new and make_agents.BEGIN in new
    (tmp_path / "AGENTS.md").write_text(new.replace(make_agents.END, make_agents.END + "\n\nby hand"))
    make_agents.write_markdown(tmp_path, "Hopper-v4", rows[:1])  # only the block changes
    assert "by hand" in (tmp_path / "AGENTS.md").read_text() and "| bc |" not in (tmp_path / "AGENTS.md").read_text()



@pytest.mark.parametrize("env_id", ["Hopper-v4", "HalfCheetah-v4", "Walker2d-v4"])
def test_agent_prose_lives_in_agents_md_and_is_what_the_cards_hold(env_id):
    """The manifest holds no prose; each agent's goal, notes and planner reason are written by hand in AGENTS.md,
    and every committed card holds exactly what make_agents.py cards copies from there."""
    make_agents = load_script("make_agents")
    zoo = make_agents.EnvZoo(ENVS / env_id)
    manifest = zoo.manifest
    assert not [k for r in manifest["training"].values() for k in ("goal", "notes") if k in r]
    assert not [r for r in manifest.get("planner", {}).values() if "why" in r]
    prose = make_agents.agent_prose(zoo.folder, manifest)
    assert {"goal", "notes", "why"} <= set(prose["tt"]) and "goal" in prose["dt"]
    for name, rel in manifest["agents"].items():
        card, said = json.loads(make_agents.card_path(zoo, rel).read_text()), prose.get(name, {})
        assert (card.get("goal"), card.get("notes")) == (said.get("goal"), said.get("notes"))
        if "planner" in card:
            assert card["planner"].get("why") == said.get("why")


def test_agent_prose_takes_a_new_agent_and_refuses_what_it_cannot_place(tmp_path):
    """A new agent: its manifest entry and a '### name' section in AGENTS.md; a section for no agent, a paragraph
    without a known label, and prose left in the manifest stop with what to do."""
    make_agents = load_script("make_agents")
    manifest = {"agents": {"dt": "dt-medium", "dt-new": "dt-new"}, "training": {"dt-new": {"command": "x"}}}
    (tmp_path / "AGENTS.md").write_text(f"# t\n\n{make_agents.PROSE_HEADING}\n\nBy hand.\n\n### dt-new\n\n"
                                        "Goal: beat\nthe dt\n\nNotes: n\n\n## Notes and history\n\n### dt\n\nx\n")
    assert make_agents.agent_prose(tmp_path, manifest) == {"dt-new": {"goal": "beat the dt", "notes": "n"}}
    (tmp_path / "AGENTS.md").write_text(f"{make_agents.PROSE_HEADING}\n\n### dt-old\n\nGoal: g\n")
    with pytest.raises(SystemExit, match="'### dt-old' names no agent"):
        make_agents.agent_prose(tmp_path, manifest)
    (tmp_path / "AGENTS.md").write_text(f"{make_agents.PROSE_HEADING}\n\n### dt\n\nGoals: g\n")
    with pytest.raises(SystemExit, match="must start with one of 'Goal: '"):
        make_agents.agent_prose(tmp_path, manifest)
    (tmp_path / "manifest.json").write_text("{}")
    with pytest.raises(SystemExit, match=r"holds prose \(training.dt-new.notes\): move it to .*AGENTS.md"):
        make_agents.agent_prose(tmp_path, {**manifest, "training": {"dt-new": {"command": "x", "notes": "n"}}})

def test_summary_reads_every_env_and_rewrites_only_the_readme_block(tmp_path, monkeypatch):
    """make_summary.py: the zoo table has a row per agent and a column per env whose results exist, its cells
    are the comparison files' numbers, and only the README's marked block changes."""
    pytest.importorskip("matplotlib")
    from matplotlib.axes import Axes

    from seqpolicy.evaluation.compare import Comparison
    from seqpolicy.evaluation.evaluate import _result

    summary = load_script("make_summary")
    envs = tmp_path / "envs"
    for env_id, agents in {"Hopper-v4": {"dt": 1500.0, "odt": 1400.0, "random": 20.0},
                           "Walker2d-v4": {"bc": 3000.0}}.items():
        (envs / env_id).mkdir(parents=True)
        shutil.copy(ENVS / env_id / "manifest.json", envs / env_id / "manifest.json")
        results = {a: _result(env_id, a, f"seqpolicy/{env_id.lower()}/medium-v0", 0, [m - 10.0, m, m + 10.0] * 3,
                              [1000] * 9, 1, "sync", 1.0, {}) for a, m in agents.items()}
        Comparison(env_id, results).save(envs / env_id / "results")
    (envs / "HalfCheetah-v4").mkdir()  # an env without results yet gets no column
    shutil.copy(ENVS / "HalfCheetah-v4" / "manifest.json", envs / "HalfCheetah-v4" / "manifest.json")
    monkeypatch.setattr(summary, "ENVS", envs)
    comps = summary.comparisons(envs)
    assert [c.env_id for c in comps] == ["Hopper-v4", "Walker2d-v4"]
    loaded = comps[0].results["dt"]
    assert loaded.returns == [1490.0, 1500.0, 1510.0] * 3 and loaded.normalized is not None
    md = summary.table(comps, summary.agent_order(comps, envs))
    rows = {line.split(" | ")[0].strip("| "): line for line in md.splitlines() if line.startswith("| ")}
    assert list(rows)[2:] == ["dt", "bc", "odt", "random"]  # the manifests' order, random last
    assert rows["odt"].split(" | ")[-1] == "- |"  # Walker2d-v4's zoo has no odt: nothing to wait for
    assert f"**{loaded.normalized['mean']:.1f}**" in rows["dt"] and "return 1500.0" in rows["dt"]
    bc = comps[1].results["bc"]
    assert rows["bc"].split(" | ")[2:] == [  # not in Hopper's results; 9 episodes: the CI is shown
        "no 100-episode result yet", f"**{bc.normalized['mean']:.1f}** ({bc.normalized['ci95'][0]:.1f} to "
        f"{bc.normalized['ci95'][1]:.1f})<br>return 3000.0 |"]

    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{summary.BEGIN}\nold table\n{summary.END}\nrest\n")
    bars = []
    real_bar = Axes.bar
    monkeypatch.setattr(Axes, "bar", lambda self, x, h, *a, **k: bars.append(list(h)) or real_bar(self, x, h, *a, **k))
    summary.main(["--readme", str(readme)])
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith(f"{summary.END}\nrest\n") and "old table" not in text
    assert md in text and (envs / "results.png").stat().st_size > 0
    assert bars == [[comps[0].results[a].normalized["mean"] for a in ("dt", "odt", "random")],
                    [comps[1].results["bc"].normalized["mean"]]]


def test_summary_leaves_out_a_result_of_other_files_than_the_shipped_ones(tmp_path, capsys):
    """An agent re-shipped after its evaluation: make_summary.py shows no score for it (the score belongs to the
    files it replaced) and names the env and agent, until make_agents.py evaluate runs again."""
    from seqpolicy.evaluation.compare import Comparison
    from seqpolicy.evaluation.evaluate import _result
    from seqpolicy.zoo import artifact_sha256

    summary = load_script("make_summary")
    folder = tmp_path / "envs" / "Hopper-v4"
    (folder / "results").mkdir(parents=True)
    shutil.copy(ENVS / "Hopper-v4" / "manifest.json", folder / "manifest.json")
    preset = json.loads((folder / "manifest.json").read_text())
    (folder / preset["agents"]["bc"]).mkdir()
    (folder / preset["agents"]["bc"] / "model.safetensors").write_bytes(b"weights")
    results = {a: _result("Hopper-v4", a, "seqpolicy/hopper-v4/medium-v0", 0, [1000.0, 1100.0], [500] * 2, 1,
                          "sync", 1.0, {}) for a in ("dt", "bc")}
    Comparison("Hopper-v4", results).save(folder / "results")
    shipped = artifact_sha256("Hopper-v4", str(folder / preset["agents"]["bc"]))
    for made_with, kept in ((shipped, True), ("0" * 64, False)):
        (folder / "results" / "bc.json").write_text(json.dumps(
            {"compare_settings": {"artifact_sha256": made_with}}))
        (comp,) = summary.comparisons(tmp_path / "envs")
        assert ("bc" in comp.results) == kept and "dt" in comp.results  # dt: no artifact here, nothing to check
        assert ("Hopper-v4 bc: left out" in capsys.readouterr().out) != kept


def test_a_damaged_comparison_file_is_named(tmp_path):
    from seqpolicy.evaluation.compare import Comparison

    (tmp_path / "c.json").write_text('{"env_id": "Hopper-v4", "results": ')
    with pytest.raises(ValueError, match="c.json is damaged"):
        Comparison.load_json(tmp_path / "c.json")
    (tmp_path / "c.json").write_text('{"env_id": "Hopper-v4", "results": {"dt": {"mean": 1}}}')
    with pytest.raises(ValueError, match="c.json: not an evaluation result"):
        Comparison.load_json(tmp_path / "c.json")


def test_sharded_evaluation_runs_at_most_jobs_shards_at_once_and_keeps_finished_ones(tmp_path, monkeypatch):
    """make_agents.py evaluate --shards N --jobs J: each shard is a seqpolicy-eval process over its seeds, at
    most J run at once, the merged result is one file, and a rerun after a failed shard starts only the
    shards that have no result yet."""
    from seqpolicy.evaluation.evaluate import _result

    make_agents = load_script("make_agents")
    (tmp_path / "Walker2d-v4").mkdir()
    shutil.copy(ENVS / "Walker2d-v4" / "manifest.json", tmp_path / "Walker2d-v4")
    zoo = make_agents.EnvZoo(tmp_path / "Walker2d-v4")
    started, live, most = [], set(), [0]

    class FakeEval:
        """Stands in for a seqpolicy-eval process: ends at its second poll, writing its seeds' returns."""

        fail_seed: int | None = None

        def __init__(self, command, **kwargs):
            self.seed, self.n = int(command[command.index("--seed") + 1]), int(command[command.index("--episodes") + 1])
            self.json, self.polls, self.returncode = Path(command[command.index("--json") + 1]), 0, None
            started.append(self.seed)
            live.add(self)
            most[0] = max(most[0], len(live))

        def poll(self):
            self.polls += 1
            if self.polls < 2:
                return None
            live.discard(self)
            self.returncode = int(self.seed == FakeEval.fail_seed)
            if not self.returncode:
                returns = [float(s) for s in range(self.seed, self.seed + self.n)]
                result = _result("Walker2d-v4", "tt", None, self.seed, returns, [1000] * self.n, self.n, "sync", 1, {})
                self.json.parent.mkdir(parents=True, exist_ok=True)
                self.json.write_text(json.dumps({"evaluation": result.to_dict()}))
            return self.returncode

    monkeypatch.setattr(make_agents.subprocess, "Popen", FakeEval)
    monkeypatch.setattr(make_agents.time, "sleep", lambda s: None)
    settings = {"agent": "tt", "made_with": "test"}
    saved = zoo.results / "tt.json"
    cache = tmp_path / "shards"
    assert zoo.shards() == REPO / "runs" / "eval-shards" / "Walker2d-v4"  # git ignores runs/
    FakeEval.fail_seed = 40
    with pytest.raises(SystemExit, match=f"tt: an evaluation shard failed .*kept in {cache / 'Walker2d-v4'}"):
        make_agents.evaluate_sharded(zoo, "tt", 100, 10, 10, saved, settings, jobs=2, shard_dir=cache)
    assert most[0] == 2 and sorted(started) == list(range(0, 100, 10)) and not saved.exists()
    started.clear()
    FakeEval.fail_seed = None
    make_agents.evaluate_sharded(zoo, "tt", 100, 10, 10, saved, settings, jobs=3, shard_dir=cache)
    assert started == [40] and most[0] == 2
    merged = json.loads(saved.read_text())
    assert merged["returns"] == [float(s) for s in range(100)] and merged["compare_settings"] == settings
    assert sorted(p.name for p in zoo.results.iterdir()) == ["tt.json"]  # the shards are elsewhere
    assert len(list((cache / "Walker2d-v4").glob("tt-*.json"))) == 10


def test_evaluating_some_agents_keeps_the_others_current_results_in_the_table(tmp_path, monkeypatch):
    """make_agents.py evaluate --agents tt: seqpolicy-compare gets tt and every other agent whose saved result
    is current (reused by --resume), not those made with other files, so comparison.* keeps the env's table."""
    make_agents = load_script("make_agents")
    folder = tmp_path / "Walker2d-v4"
    (folder / "results").mkdir(parents=True)
    shutil.copy(ENVS / "Walker2d-v4" / "manifest.json", folder)
    zoo = make_agents.EnvZoo(folder)
    for name in ("dt", "bc", "tt"):
        (folder / zoo.manifest["agents"][name]).mkdir()
    monkeypatch.setattr(make_agents, "compare_settings", lambda env, name, *a: {"agent": name, "files": "now"})
    for name, files in (("bc", "now"), ("dt", "before")):
        (folder / "results" / f"{name}.json").write_text(
            json.dumps({"compare_settings": {"agent": name, "files": files}}))
    ran = []
    monkeypatch.setattr(make_agents.subprocess, "run", lambda command, **kw: ran.append(command))
    make_agents.evaluate(zoo, 100, 10, 1, ["tt"])
    (command,) = ran
    assert command[command.index("--agents") + 1:] == ["tt", "bc"]  # the preset's order


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_every_result_is_the_evaluation_of_the_shipped_files(env_id):
    """A re-shipped agent must be evaluated again: results/<name>.json records the sha256 of the files it was
    made with (seqpolicy-compare), and make_agents.py cards skips a result whose files changed."""
    from seqpolicy.zoo import artifact_sha256

    preset = load_manifest(env_id)
    results = sorted((ENVS / env_id / "results").glob("*.json"))
    assert {p.stem for p in results} == {"comparison", *preset.agents, "random"}  # flat: no results/results/
    for result_file in results:
        name = result_file.stem
        if name == "random" or name not in preset.agents:
            continue
        made_with = json.loads(result_file.read_text()).get("compare_settings", {}).get("artifact_sha256")
        assert made_with == artifact_sha256(env_id, name), f"{env_id} {name}: {result_file} evaluated other files"


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_every_training_seed_in_the_table_saw_its_datasets_card(env_id):
    """Seeds are comparable only when trained on the same data, and a dataset rebuilt on another CPU kind has other
    episodes (envs/README.md): the dataset statistics every seed with a test result stored at training are its
    dataset card's. (Eight Hopper-v4 seeds trained on Intel-made data failed this: research/intel-data-seeds/.)"""
    from seqpolicy.zoo import training_seed_paths

    folder = ENVS / env_id
    for result in sorted((folder / "results" / "seeds").glob("*.json")):
        name, seed = result.stem.rsplit("-", 1)
        agent = json.loads((training_seed_paths(env_id, name)[int(seed)] / "agent.json").read_text())
        stats = agent["info"]["dataset_stats"]
        dataset = load_script("zoo_common").dataset_name(agent["dataset_id"])
        card = json.loads((folder / "datasets" / f"{dataset}.json").read_text())
        seen = (stats["n_episodes"], stats["return_min"], stats["return_mean"], stats["return_max"])
        want = (card["episodes"], card["return"]["min"], card["return"]["mean"], card["return"]["max"])
        assert seen == pytest.approx(want, rel=1e-9), f"{result.name}: trained on other {dataset} data than its card"
