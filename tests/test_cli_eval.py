"""seqpolicy-eval and seqpolicy-compare end to end on tiny budgets, and their one-line errors."""

from __future__ import annotations

import json

import pytest
import torch

import seqpolicy
from seqpolicy.cli import compare as compare_cli
from seqpolicy.cli import eval as eval_cli
from seqpolicy.evaluation.video import video_stats

pytest.importorskip("imageio_ffmpeg", reason="CLI video tests need the video extra: pip install -e .[video]")

TOY = "seqpolicy/PointReach-v0"


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny models run several times faster on one thread when the cores are busy."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def dt_folder(tmp_path_factory):
    """A Decision Transformer trained for a few hundred steps on PointReach data, saved to a tmp folder."""
    from seqpolicy.toy import make_toy_dataset

    agent = seqpolicy.train_dt(make_toy_dataset(60, seed=0), max_steps=200, batch_size=32, hidden_size=32,
                               n_layer=1, n_head=1, context_length=5, warmup_steps=20, learning_rate=1e-3,
                               eval_every=10**9, checkpoint_every=10**9, progress=False, device="cpu")
    folder = tmp_path_factory.mktemp("zoo") / "seqpolicy__PointReach-v0" / "dt"
    agent.save(folder)
    return folder


def run(cli, capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_random_agent_on_hopper_end_to_end(tmp_path, capsys):
    pytest.importorskip("mujoco")
    code, out, err = run(eval_cli, capsys, "--env", "Hopper-v4", "--agent", "random", "--episodes", "3",
                         "--n-envs", "2", "--video-dir", str(tmp_path / "videos"), "--video-size", "64x64",
                         "--max-episode-steps", "30", "--json", str(tmp_path / "eval.json"))
    assert code == 0, err
    doc = json.loads((tmp_path / "eval.json").read_text())
    assert len(doc["evaluation"]["returns"]) == 3 and doc["evaluation"]["normalized"]["env_id"] == "Hopper-v4"
    assert "| random | Hopper-v4 | - | 3 |" in out and "D4RL score" in out
    (video,) = doc["videos"]
    assert video_stats(video["path"])["frames"] == video["frames"] > 1
    # the random agent, asked again on one env, would act otherwise than in the batch of 2: the video is the
    # scored episode itself (its actions), and says so
    assert video["returns"]["random"] == doc["evaluation"]["returns"][0] == video["evaluated_return"]
    assert video["matches_evaluation"] and video["replay"] == "actions"
    assert f"video: {video['path']}" in out and f"scored {video['evaluated_return']:.1f})" in out


def test_trained_dt_from_the_zoo_by_default(dt_folder, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SEQPOLICY_ENVS", str(dt_folder.parent.parent))
    (dt_folder.parent / "manifest.json").write_text(json.dumps({"env_id": TOY, "default_agent": "dt",
                                                               "eval": {"episodes": 4, "seed": 7}}))
    code, out, err = run(eval_cli, capsys, "--env", TOY, "--record", "best", "--video-dir", str(tmp_path),
                         "--json", str(tmp_path / "e.json"))
    assert code == 0, err
    doc = json.loads((tmp_path / "e.json").read_text())
    ev = doc["evaluation"]
    assert ev["agent"] == "DecisionTransformerAgent (dt)" and ev["seeds"] == [7, 8, 9, 10]  # preset used
    (video,) = doc["videos"]
    assert video["matches_evaluation"] and video["episode"] == max(range(4), key=ev["returns"].__getitem__)
    assert video_stats(video["path"])["frames"] == 51
    # the same agent by path, vectorised, without video
    code, out, err = run(eval_cli, capsys, "--env", TOY, "--agent", str(dt_folder), "--episodes", "4",
                         "--seed", "7", "--n-envs", "2", "--no-video", "--json", str(tmp_path / "v.json"))
    assert code == 0, err
    vec = json.loads((tmp_path / "v.json").read_text())["evaluation"]
    assert vec["returns"] == pytest.approx(ev["returns"], abs=1e-3)  # batched matmuls differ in the last bits


def test_compare_writes_table_json_chart_and_side_by_side_video(dt_folder, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out_dir = tmp_path / "cmp"
    code, out, err = run(compare_cli, capsys, "--env", TOY, "--agents", str(dt_folder), "random",
                         "--episodes", "3", "--out", str(out_dir), "--video", "--video-dir", str(tmp_path / "v"))
    assert code == 0, err
    doc = json.loads((out_dir / "comparison.json").read_text())
    assert set(doc["results"]) == {"dt", "random"}  # a path is labelled by its last folder
    assert all(r["seeds"] == [0, 1, 2] for r in doc["results"].values())
    assert (out_dir / "comparison.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| random |" in (out_dir / "comparison.md").read_text()
    (video,) = list((tmp_path / "v").iterdir())
    assert video_stats(video)["frames"] == 51


def test_compare_defaults_to_the_zoo_and_resumes(dt_folder, tmp_path, capsys, monkeypatch):
    """No --agents: the preset's agents then random; --resume reuses finished agents' saved results, but not
    those of an agent whose files changed since (its model card, README.md, aside)."""
    import shutil

    pytest.importorskip("matplotlib")
    zoo = tmp_path / "zoo" / dt_folder.parent.name
    shutil.copytree(dt_folder, zoo / "dt")
    monkeypatch.setenv("SEQPOLICY_ENVS", str(zoo.parent))
    (zoo / "manifest.json").write_text(json.dumps({"default_agent": "dt", "agents": {"dt": "dt"}}))
    out_dir = tmp_path / "cmp"
    argv = ["--env", TOY, "--episodes", "2", "--out", str(out_dir), "--resume"]
    code, _, err = run(compare_cli, capsys, *argv)
    assert code == 0, err
    assert "[1/2] dt: evaluating" in err and "[2/2] random: evaluating" in err
    first = json.loads((out_dir / "comparison.json").read_text())
    assert sorted(p.name for p in out_dir.glob("*.json")) == ["comparison.json", "dt.json", "random.json"]
    (out_dir / "random.json").unlink()  # as if it crashed before random finished
    code, _, err = run(compare_cli, capsys, *argv)
    assert code == 0, err
    assert "dt: reusing" in err and "random: evaluating" in err
    second = json.loads((out_dir / "comparison.json").read_text())
    assert second["results"]["dt"] == first["results"]["dt"]
    assert second["results"]["random"]["returns"] == first["results"]["random"]["returns"]  # same seeds
    code, _, err = run(compare_cli, capsys, *argv[:3], "3", *argv[4:])  # other settings: nothing reused
    assert code == 0, err
    assert "reusing" not in err
    assert json.loads((out_dir / "comparison.json").read_text())["results"]["dt"]["seeds"] == [0, 1, 2]
    code, _, err = run(compare_cli, capsys, *argv[:3], "3", *argv[4:])
    assert "dt: reusing" in err and "random: reusing" in err
    (zoo / "dt" / "README.md").write_text("# a card rewritten after the evaluation\n")
    (zoo / "dt" / "card.json").write_text(json.dumps({"evaluation": "rewritten too"}))
    code, _, err = run(compare_cli, capsys, *argv[:3], "3", *argv[4:])
    assert "dt: reusing" in err
    agent = seqpolicy.DecisionTransformerAgent.load(zoo / "dt")
    agent.target_return = agent.target_return + 1.0  # e.g. a re-calibration
    agent.save(zoo / "dt")
    code, _, err = run(compare_cli, capsys, *argv[:3], "3", *argv[4:])
    assert code == 0, err
    assert "dt: evaluating" in err and "random: reusing" in err
    (out_dir / "results").mkdir()  # an older seqpolicy-compare kept each agent's results in --out/results/
    for name in ("dt", "random"):
        (out_dir / f"{name}.json").rename(out_dir / "results" / f"{name}.json")
    code, _, err = run(compare_cli, capsys, *argv[:3], "3", *argv[4:])
    assert code == 0, err
    assert f"dt: reusing {out_dir / 'results' / 'dt.json'}" in err and "random: reusing" in err


def test_compare_refuses_an_agent_labelled_like_its_table(dt_folder, tmp_path, capsys):
    import shutil

    shutil.copytree(dt_folder, tmp_path / "comparison")
    code, _, err = run(compare_cli, capsys, "--env", TOY, "--agents", str(tmp_path / "comparison"), "random",
                       "--episodes", "1", "--out", str(tmp_path / "cmp"))
    assert code == 2 and "would overwrite comparison.json in --out" in err, err


@pytest.mark.parametrize("argv, message", [
    (["--env", "NoSuchEnv-v3", "--agent", "random", "--no-video"], "Unknown env id 'NoSuchEnv-v3'"),
    (["--env", TOY, "--agent", "alphazero", "--no-video"], "Unknown agent 'alphazero'"),
    (["--env", TOY, "--agent", "random", "--episodes", "0"], "--episodes: must be at least 1"),
    (["--env", TOY, "--no-video"], "No default agent for seqpolicy/PointReach-v0 in the zoo"),
])
def test_bad_input_exits_nonzero_with_one_line(argv, message, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("SEQPOLICY_ENVS", str(tmp_path))  # an empty zoo
    try:
        code = eval_cli.main(argv)
    except SystemExit as e:  # argparse errors
        code = e.code
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and err.startswith("seqpolicy-eval: error:") and message in err, err


def test_unwritable_video_folder_and_mismatched_agent(dt_folder, tmp_path, capsys):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    code, _, err = run(eval_cli, capsys, "--env", TOY, "--agent", "random", "--video-dir", str(blocker / "v"))
    assert code == 2 and "--video-dir" in err and "is a file, not a folder" in err
    assert len(err.strip().splitlines()) == 1
    code, _, err = run(eval_cli, capsys, "--env", "Hopper-v4", "--agent", str(dt_folder), "--no-video")
    assert code == 2 and "does not match Hopper-v4" in err


def test_default_outputs_stay_out_of_git_and_the_sample_videos_stay_tracked():
    """seqpolicy-eval run in the source tree writes videos/<env>_<agent>..._seed0_<time>.mp4 and seqpolicy-compare
    comparisons/...: git ignores both, while the README's samples in videos/Hopper-v4/ stay tracked (and a new
    sample there still shows up)."""
    import shutil
    import subprocess
    from pathlib import Path

    repo = Path(__file__).resolve().parent.parent
    if not (repo / ".git").exists() or shutil.which("git") is None:
        pytest.skip("not a git checkout")

    def ignored(path: str) -> bool:
        return subprocess.run(["git", "check-ignore", "-q", "--no-index", path], cwd=repo).returncode == 0

    assert ignored("videos/Hopper-v4_dt_ep0_seed0_20260101-120000.mp4")
    assert ignored("videos/.Hopper-v4_dt_ep0_seed0_20260101-120000.partial-1a2b3c4d.mp4")
    assert ignored("comparisons/Hopper-v4_20260101-120000/comparison.md")
    assert not ignored("videos/Hopper-v4/new-agent.mp4")
    tracked = subprocess.run(["git", "ls-files", "videos/Hopper-v4"], cwd=repo, capture_output=True,
                             text=True).stdout.split()
    assert "videos/Hopper-v4/dt.mp4" in tracked and not any(ignored(p) for p in tracked)


def test_a_saved_agent_is_labelled_by_its_folder_or_the_label_given(dt_folder, tmp_path, capsys):
    """A user's own agent is not labelled like the zoo's DT ("dt"): runs/x/agent is x/agent in the table, the
    JSON and the video's file name, unless --label names it."""
    import shutil

    agent = tmp_path / "runs" / "x" / "agent"
    shutil.copytree(dt_folder, agent)
    base = ["--env", TOY, "--episodes", "1", "--video-dir", str(tmp_path / "v"), "--json", str(tmp_path / "e.json")]
    code, out, err = run(eval_cli, capsys, *base, "--agent", str(agent))
    assert code == 0, err
    doc = json.loads((tmp_path / "e.json").read_text())
    assert doc["label"] == "x/agent" and "| x/agent |" in out
    assert "_x-agent_ep0_seed0_" in doc["videos"][0]["path"]
    code, out, err = run(eval_cli, capsys, *base, "--agent", str(agent), "--label", "mine")
    assert code == 0, err
    doc = json.loads((tmp_path / "e.json").read_text())
    assert doc["label"] == "mine" and "| mine |" in out and "_mine_ep0_seed0_" in doc["videos"][0]["path"]


def test_an_agent_made_for_another_env_version_is_refused_unless_allowed(tmp_path, capsys):
    """The Walker2d-v4 zoo DT on Walker2d-v5 (the same spaces) ran silently to a return of 102.5."""
    from pathlib import Path

    pytest.importorskip("mujoco")
    from seqpolicy.cli import calibrate as calibrate_cli

    dt = Path(__file__).resolve().parent.parent / "envs" / "Walker2d-v4" / "dt-medium"
    argv = ["--env", "Walker2d-v5", "--agent", str(dt), "--episodes", "1", "--max-episode-steps", "3", "--no-video"]
    code, _, err = run(eval_cli, capsys, *argv)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "seqpolicy-eval: error: The agent was made for Walker2d-v4, not Walker2d-v5" in err
    assert "--allow-env-mismatch" in err
    code, out, err = run(eval_cli, capsys, *argv, "--allow-env-mismatch")
    assert code == 0 and "| dt-medium | Walker2d-v5 |" in out, err
    code, _, err = run(compare_cli, capsys, "--env", "Walker2d-v5", "--agents", str(dt), "--episodes", "1",
                       "--max-episode-steps", "3", "--out", str(tmp_path / "cmp"))
    assert code == 2 and "made for Walker2d-v4, not Walker2d-v5" in err, err
    code, _, err = run(calibrate_cli, capsys, "--agent", str(dt), "--env", "Walker2d-v5", "--targets", "1000",
                       "--episodes", "1")
    assert code == 2 and "made for Walker2d-v4, not Walker2d-v5" in err, err
