"""The shipped Hopper-v4 zoo (envs/Hopper-v4/): artifacts load and act, a score regression guard, cards,
wheel packaging, and ``seqpolicy-eval --env Hopper-v4`` end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from seqpolicy.evaluation.evaluate import evaluate
from seqpolicy.zoo import card_path, get_agent, load_manifest

REPO = Path(__file__).resolve().parent.parent
HOPPER = REPO / "envs" / "Hopper-v4"
PRESET = json.loads((HOPPER / "manifest.json").read_text())
SHIPPED = {name: HOPPER / rel for name, rel in PRESET["agents"].items()}

# The default DT scored 1558.8 and 1526.9 on seeds 0 and 1 (its 100-episode evaluation, envs/Hopper-v4/
# dt-medium/card.json: mean 1557.2, lowest episode 1227.0). The guard sits below every one of those 100 episodes
# and far above what a broken agent gets (random: ~17; the same DT without centring its observations: 38, 36).
DT_SEEDS_0_1 = (1558.8, 1526.9)
DT_GUARD = 1150.0


@pytest.fixture(autouse=True)
def _zoo_from_repo(monkeypatch):
    monkeypatch.delenv("SEQPOLICY_ENVS", raising=False)


pytestmark = pytest.mark.usefixtures("one_thread_module")


def test_preset_lists_shipped_agents_with_cards():
    preset = load_manifest("Hopper-v4")
    assert preset.folder == HOPPER and preset.default_agent == "dt"
    for name, path in SHIPPED.items():
        assert path.exists(), f"{name}: {path} is missing"
        card = json.loads(card_path(path).read_text())  # in the agent's folder (an SB3 zip's: beside it)
        assert card["evaluation"]["episodes"] == 100 and card["evaluation"]["seeds"] == "0-99"
        assert card["evaluation"]["ci95"][0] <= card["evaluation"]["mean"] <= card["evaluation"]["ci95"][1]
        if name in PRESET["training"]:
            assert card["command"] == PRESET["training"][name]["command"]
            assert card["train_steps"] > 0 and card["train_wall_time_s"] > 0 and card["trained_on"]
        size = sum(f.stat().st_size for f in ([path] if path.is_file() else path.iterdir()))
        limit = 10e6 if name == "tt" else 5e6  # the TT is the authors' model size (4 x 128)
        assert size < limit, f"{name} is {size / 1e6:.1f} MB"


def test_zoo_tt_plans():
    """The shipped TT searches: 8 or more beams over sampled action tokens, not the most likely token
    everywhere (which makes every beam the same sequence)."""
    planner = json.loads((SHIPPED["tt"] / "agent.json").read_text())["planner"]
    assert planner["beam_width"] >= 8 and planner["n_expand"] >= 2
    assert planner["k_act"] is None and 0 < planner["cdf_act"] < 1


@pytest.mark.parametrize("name", ["dt", "dt-medium-expert", "tt", "bc"])
def test_shipped_agents_load_and_act(name):
    agent = get_agent("Hopper-v4", name, device="cpu")
    assert agent.env_id == "Hopper-v4"
    obs = np.zeros(11, dtype=np.float32)
    agent.reset()
    for reward in (None, 1.0, 1.0):  # no reward before the first step
        action = agent.act(obs, reward)
        assert action.shape == (3,) and np.all(np.abs(action) <= 1.0) and np.isfinite(action).all()


def test_default_dt_score_guard():
    """Two fixed-seed episodes of the default agent: a regression guard for the weights and the agent code."""
    result = evaluate(get_agent("Hopper-v4", device="cpu"), "Hopper-v4", n_episodes=2, seed=0, n_envs=2)
    assert result.mean > DT_GUARD, f"default DT scored {result.returns} on seeds 0-1 (measured: {DT_SEEDS_0_1})"


def test_seqpolicy_eval_hopper_end_to_end(tmp_path):
    pytest.importorskip("imageio_ffmpeg", reason="the video needs the video extra: pip install -e .[video]")
    out = subprocess.run(
        [sys.executable, "-m", "seqpolicy.cli.eval", "--env", "Hopper-v4", "--episodes", "1",
         "--max-episode-steps", "40", "--video-size", "96x96", "--video-dir", str(tmp_path / "videos"),
         "--json", str(tmp_path / "eval.json")],
        cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "Hopper-v4" in out.stdout and "video:" in out.stdout
    doc = json.loads((tmp_path / "eval.json").read_text())
    assert doc["label"] == "dt" and doc["evaluation"]["n_episodes"] == 1
    assert doc["evaluation"]["dataset"] == "seqpolicy/hopper-v4/medium-v0"
    videos = list((tmp_path / "videos").glob("*.mp4"))
    assert len(videos) == 1 and videos[0].stat().st_size > 1000


def test_seqpolicy_eval_planner_settings_for_the_zoo_tt(tmp_path, capsys):
    """--planner changes the zoo TT's search on top of its own settings (its cdf_act stays) and is recorded in
    the JSON; it is refused for agents that do not plan and for bad settings, in one line."""
    from seqpolicy.cli import eval as eval_cli

    base = ["--env", "Hopper-v4", "--episodes", "1", "--max-episode-steps", "4", "--no-video"]
    code = eval_cli.main([*base, "--agent", "tt", "--planner", "beam_width=4", "n_expand=3",
                          "--json", str(tmp_path / "tt.json")])
    assert code == 0, capsys.readouterr().err
    planner = json.loads((tmp_path / "tt.json").read_text())["planner"]
    shipped = json.loads((SHIPPED["tt"] / "agent.json").read_text())["planner"]
    assert (planner["beam_width"], planner["n_expand"]) == (4, 3)
    assert all(planner[k] == shipped[k] for k in ("cdf_act", "k_act", "horizon", "plan_freq")), (planner, shipped)
    for extra, message in ((["--agent", "dt", "--planner", "cpu"], "applies to Trajectory Transformer agents"),
                           (["--agent", "tt", "--planner", "beam_width=2.5"], "beam_width takes int"),
                           (["--agent", "tt", "--planner", "beams=4"], "Unknown planner settings ['beams']")):
        capsys.readouterr()
        assert eval_cli.main([*base, *extra]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err


def test_wheel_carries_the_zoo(tmp_path):
    """A wheel built from a copy of this checkout holds the zoo under data/share/seqpolicy/envs: the agents'
    folders with their cards, not the research, results or extra training seeds."""
    import shutil
    import zipfile

    src = tmp_path / "src"  # building writes build/ and egg-info next to setup.cfg: keep that out of the repo
    src.mkdir()
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    for name in ("seqpolicy", "envs"):
        shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.tmp"))
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp_path / "dist"), str(src)], capture_output=True, text=True, timeout=300)
    if build.returncode != 0 and "No module named" in build.stderr:
        pytest.skip(f"cannot build a wheel here: {build.stderr.strip().splitlines()[-1]}")
    assert build.returncode == 0, build.stderr
    (wheel,) = (tmp_path / "dist").glob("seqpolicy-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for name, path in SHIPPED.items():
        for shipped in (path, card_path(path)):  # each agent with its card
            inside = f"share/seqpolicy/envs/Hopper-v4/{shipped.relative_to(HOPPER).as_posix()}"
            assert any(inside in n for n in names), f"{name}: {inside} is not in {wheel.name}"
    for kept in ("research/", "results/", "seeds/"):  # in a source checkout only
        assert not any(f"share/seqpolicy/envs/Hopper-v4/{kept}" in n for n in names), kept
    for preset in sorted((REPO / "envs").glob("*/manifest.json")):  # every env's, built or not
        assert any(n.endswith(f"share/seqpolicy/envs/{preset.parent.name}/manifest.json") for n in names), preset


FOLDERS = {name: path for name, path in SHIPPED.items() if path.is_dir()}


@pytest.mark.parametrize("name", ["dt", "dt-medium-expert", "tt"])
def test_shipped_transformer_folders_load_in_transformers(name):
    """The zoo's DT and TT folders are transformers folders holding exactly the agent's weights."""
    transformers = pytest.importorskip("transformers", reason="needs the test extra: pip install -e .[test]")
    if name == "tt":
        tt = pytest.importorskip("transformers.models.deprecated.trajectory_transformer",
                                 reason="the TT needs transformers>=4.40,<5")
        cls = tt.TrajectoryTransformerModel
    else:
        cls = transformers.DecisionTransformerModel
    theirs = cls.from_pretrained(SHIPPED[name]).state_dict()
    ours = get_agent("Hopper-v4", name, device="cpu").model.hf_state_dict()
    assert set(ours) <= set(theirs)
    for key, tensor in ours.items():
        torch.testing.assert_close(theirs[key], tensor, rtol=0, atol=0, msg=key)


@pytest.mark.parametrize("name", sorted(FOLDERS))
def test_shipped_folders_carry_a_model_card_made_from_their_card(name):
    """README.md is what make_agents.py cards generates from <artifact>/card.json, and the Hub reads its
    metadata."""
    from seqpolicy.common.model_card import model_card

    folder = FOLDERS[name]
    card = json.loads((folder / "card.json").read_text())
    readme = (folder / "README.md").read_text()
    stale = "stale README.md: run python envs/make_agents.py --env Hopper-v4 cards"
    assert readme == model_card(card, "Hopper-v4"), stale
    hub = pytest.importorskip("huggingface_hub", reason="needs the test extra: pip install -e .[test]")
    data = hub.ModelCard(readme).data
    evaluation = card["evaluation"]
    results = {r.metric_type: r for r in data.eval_results}
    assert sorted(results) == ["d4rl_normalized_score", "mean_reward"]
    for result in results.values():
        assert (result.task_type, result.dataset_type) == ("reinforcement-learning", "Hopper-v4")
    assert results["mean_reward"].metric_value == f"{evaluation['mean']:.2f} +/- {evaluation['std']:.2f}"
    assert results["d4rl_normalized_score"].metric_value == pytest.approx(evaluation["d4rl_normalized"], abs=0.01)
    assert data.datasets == [card["dataset"]] and "Hopper-v4" in data.tags
