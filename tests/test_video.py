"""Video: streamed mp4 that decodes with the expected frame count, selection, overlay, safety of file names."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest

import seqpolicy
from seqpolicy.evaluation.evaluate import EvalResult, evaluate
from seqpolicy.evaluation.video import (
    VideoWriter,
    check_video_folder,
    record_side_by_side,
    record_video,
    select_episodes,
    setup_headless,
    video_stats,
)
from seqpolicy.toy import ScriptedPolicy

pytest.importorskip("imageio_ffmpeg", reason="video tests need the video extra: pip install -e .[video]")

TOY = "seqpolicy/PointReach-v0"


def toy_agents():
    env = gym.make(TOY)
    expert = seqpolicy.FunctionAgent(ScriptedPolicy(), env.observation_space, env.action_space)
    return expert, seqpolicy.RandomAgent(env.observation_space, env.action_space)


def test_recorded_episode_decodes_with_one_frame_per_step_plus_reset(tmp_path):
    expert, _ = toy_agents()
    result = evaluate(expert, TOY, n_episodes=3, seed=4)
    (info,) = record_video(expert, TOY, tmp_path, result=result, record="first", label="expert")
    stats = video_stats(info.path)
    assert info.path.endswith(".mp4") and info.episode == 0 and info.seed == 4
    assert stats["frames"] == info.frames == result.lengths[0] + 1
    assert stats["blank_frames"] == 0 and info.blank_frames == 0
    assert info.matches_evaluation and info.returns["expert"] == pytest.approx(result.returns[0])
    assert [p.name for p in tmp_path.iterdir()] == [info.path.split("/")[-1]]  # no partial file left


def test_best_worst_all_selection(tmp_path):
    _, rand = toy_agents()
    result = evaluate(rand, TOY, n_episodes=4, seed=0)
    assert select_episodes([1.0, 5.0, -2.0], "best") == [1] and select_episodes([1.0, 5.0, -2.0], "worst") == [2]
    (best,) = record_video(rand, TOY, tmp_path, result=result, record="best", overlay=False)
    (worst,) = record_video(rand, TOY, tmp_path, result=result, record="worst", overlay=False)
    assert best.episode == int(np.argmax(result.returns)) and worst.episode == int(np.argmin(result.returns))
    # with one env the agent is reseeded per episode, so even a random agent's replay is exact
    assert best.matches_evaluation and worst.matches_evaluation
    every = record_video(rand, TOY, tmp_path, result=result, record="all", overlay=False)
    assert [v.episode for v in every] == [0, 1, 2, 3]
    assert len({v.path for v in every + [best, worst]}) == 6  # unique names, nothing overwritten
    with pytest.raises(ValueError, match="record must be one of"):
        select_episodes([1.0], "median")


def test_the_video_is_the_scored_episode_even_for_a_sampling_agent_evaluated_in_a_batch(tmp_path):
    """The random agent samples the actions of all the envs of a batch from one generator, so asked again on one
    env it acts otherwise: the video steps the env with the actions the evaluation took, and scores exactly
    what the evaluation measured."""
    _, rand = toy_agents()
    result = evaluate(rand, TOY, n_episodes=4, seed=3, n_envs=2)
    videos = record_video(rand, TOY, tmp_path, result=result, record="all", overlay=False, label="random")
    assert [v.returns["random"] for v in videos] == result.returns  # to the last bit
    assert [v.lengths["random"] for v in videos] == result.lengths
    assert all(v.replay == "actions" and v.matches_evaluation for v in videos)
    # a result read from JSON has no actions: the agent plays again, and the video says that it differs
    doc = json.loads(json.dumps(result.to_dict()))
    assert "actions" not in doc and EvalResult.from_dict(doc).actions is None
    with pytest.warns(UserWarning, match="the agent acted otherwise when asked again"):
        (again,) = record_video(rand, TOY, tmp_path, result=EvalResult.from_dict(doc), record="best", overlay=False)
    assert again.replay == "agent" and not again.matches_evaluation


def test_names_are_unique_and_interrupted_recordings_leave_nothing(tmp_path):
    frame = np.full((32, 48, 3), 200, dtype=np.uint8)
    paths = []
    for _ in range(2):
        with VideoWriter(tmp_path, "same", fps=10) as w:
            for _ in range(3):
                w.append(frame)
        paths.append(w.path)
    assert paths[0] != paths[1] and all(p.exists() for p in paths)
    before = sorted(tmp_path.iterdir())
    with pytest.raises(KeyboardInterrupt), VideoWriter(tmp_path, "same", fps=10) as w:
        w.append(frame)
        raise KeyboardInterrupt
    assert sorted(tmp_path.iterdir()) == before  # neither a final nor a partial file


def test_all_black_frames_are_detected_and_reported(tmp_path):
    class DarkPointReach(seqpolicy.toy.PointReachEnv):
        def render(self):
            return np.zeros((96, 96, 3), dtype=np.uint8)

    def make(render_mode=None):
        return gym.wrappers.TimeLimit(DarkPointReach(render_mode=render_mode), 5)

    expert, _ = toy_agents()
    with pytest.warns(UserWarning, match="6 of 6 frames .* are all black"):
        (info,) = record_video(expert, make, tmp_path, seed=0)  # overlay text does not hide a black frame
    assert info.blank_frames == 6
    assert video_stats(info.path)["frames"] == 6


def test_side_by_side_video(tmp_path):
    expert, rand = toy_agents()
    info = record_side_by_side({"expert": expert, "random": rand}, TOY, tmp_path, seed=2, overlay=False)
    stats = video_stats(info.path)
    assert stats["frames"] == 51 and stats["width"] == 2 * 96 and stats["blank_frames"] == 0
    single = evaluate(expert, TOY, n_episodes=1, seed=2)
    assert info.returns["expert"] == pytest.approx(single.returns[0]) and set(info.returns) == {"expert", "random"}


def test_hopper_video_renders_headless(tmp_path):
    pytest.importorskip("mujoco")
    env = gym.make("Hopper-v4")
    agent = seqpolicy.RandomAgent(env.observation_space, env.action_space)
    for fast in (False, True):  # fast: no shadows or reflections
        (info,) = record_video(agent, "Hopper-v4", tmp_path, seed=0, size=(64, 64), max_episode_steps=4, fast=fast)
        stats = video_stats(info.path)
        assert stats["frames"] == info.frames == 5 and stats["blank_frames"] == 0


def test_headless_choice_respects_the_users_setting(monkeypatch):
    monkeypatch.setenv("MUJOCO_GL", "osmesa")
    assert setup_headless() == "osmesa"


def test_unwritable_video_folder(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(OSError, match="Cannot write videos to .*file.txt"):
        check_video_folder(blocker / "videos")
    expert, _ = toy_agents()
    with pytest.raises(OSError, match="--no-video"):
        record_video(expert, TOY, blocker / "videos")


@pytest.mark.parametrize("env_id, min_pixels", [("Hopper-v4", 50), ("HalfCheetah-v4", 20)])
def test_mujoco_camera_follows_the_robot(env_id, min_pixels):
    """Moved 10 m along x, the robot is still in the frame: the camera tracks the body the env's camera config
    names (Hopper's torso) or, when it names none (HalfCheetah), the robot's root body."""
    pytest.importorskip("mujoco")
    import mujoco

    from seqpolicy.evaluation.video import _make_render_env

    env = _make_render_env(env_id, (96, 96), None, (), None, fast=True)
    env.reset(seed=0)
    sim = env.unwrapped
    sim.data.qpos[0] += 10.0
    mujoco.mj_forward(sim.model, sim.data)
    frame = env.render().astype(int)
    env.close()
    robot = (frame[..., 0] > frame[..., 1] + 40) & (frame[..., 0] > frame[..., 2] + 60)  # its orange-brown
    assert robot.sum() > min_pixels, f"only {robot.sum()} robot-coloured pixels: the camera did not follow"


def test_the_library_defaults_are_the_fast_ones():
    """``record_video`` in Python renders as fast as the CLI by default: 320x320 frames without shadows."""
    import inspect

    from seqpolicy.evaluation import video

    for fn in (video.record_video, video.record_side_by_side):
        params = inspect.signature(fn).parameters
        assert params["fast"].default is True, fn.__name__
        assert params["size"].default == (320, 320), fn.__name__
