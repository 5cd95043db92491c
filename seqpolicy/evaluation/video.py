"""Headless episode videos: frames stream to mp4 through imageio-ffmpeg, one episode or several agents side by side.

- Headless by default: :func:`setup_headless` picks ``MUJOCO_GL`` (EGL, else OSMesa) before MuJoCo
  renders (and before PyOpenGL is imported); a ``MUJOCO_GL`` the user set wins.
- Memory stays flat: each frame goes to ffmpeg as soon as it is rendered.
- A video is written under a temporary name and moved to a fresh, unique final name only when complete, so an
  interrupted recording never leaves a truncated file under the final name and nothing is overwritten.
- All-black frames (a broken GL backend) are counted and reported.

Videos show the scored episodes themselves: ``record_video(agent, env, result=evaluate(...))`` steps a rendering
env, reset with the episode's seed, with the actions the evaluation recorded (the agent is not asked again), and
checks that the replay scores what the evaluation measured. Asking the agent again could show another episode: a
sampling agent draws other samples, and a network's last bits depend on the batch it acts in (``n_envs``) and
on its threads. Only results without recorded actions (read from JSON) are played by the agent again.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import time
import uuid
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import gymnasium
import numpy as np

from seqpolicy.evaluation.evaluate import (
    EnvLike,
    EvalResult,
    Wrapper,
    check_agent_env,
    env_label,
    make_env,
    replay_episode,
    run_episode,
)

RecordMode = Literal["first", "best", "worst", "all"]
RECORD_MODES = ("first", "best", "worst", "all")
DEFAULT_SIZE = (320, 320)  # with fast=True, the cheap defaults (benchmarks/bench_eval.py times both)
BLANK_LEVEL = 8  # a frame whose brightest pixel is at most this is "all black"

_HEADLESS_LIBS = (("egl", ("libEGL.so.1", "libEGL.so")),
                  ("osmesa", ("libOSMesa.so.8", "libOSMesa.so.6", "libOSMesa.so")))


class RenderError(RuntimeError):
    """Frames cannot be rendered (no working OpenGL backend, or the env cannot render)."""


def setup_headless() -> str | None:
    """Choose a headless OpenGL backend for MuJoCo by setting ``MUJOCO_GL``; call before MuJoCo renders.

    Returns:
        The backend in use: the user's own ``MUJOCO_GL`` if set, else ``"egl"`` or ``"osmesa"`` (the first
        whose library loads), or None when nothing was chosen (macOS/Windows use their native backend, an
        OpenGL platform was already loaded, or no headless library was found; rendering then says what went
        wrong).
    """
    if os.environ.get("MUJOCO_GL"):
        return os.environ["MUJOCO_GL"]
    # MuJoCo's renderer reads MUJOCO_GL when a context is first made, but PyOpenGL fixes its platform when it
    # is first imported: after that, choosing a backend here would not take effect.
    if not sys.platform.startswith("linux") or "OpenGL" in sys.modules:
        return None
    for backend, libs in _HEADLESS_LIBS:
        for lib in libs:
            try:
                ctypes.CDLL(lib)
            except OSError:
                continue
            os.environ["MUJOCO_GL"] = backend
            os.environ.setdefault("PYOPENGL_PLATFORM", backend)
            return backend
    return None


def _render_hint() -> str:
    backend = os.environ.get("MUJOCO_GL")
    if backend:
        return (f"MUJOCO_GL={backend} is set; check that this backend works here, or unset it to let seqpolicy "
                "choose EGL/OSMesa.")
    return ("No headless OpenGL backend was found: install EGL (apt install libegl1) or OSMesa "
            "(apt install libosmesa6), or set MUJOCO_GL=glfw on a machine with a display.")


def _require_imageio_ffmpeg():
    try:
        import imageio_ffmpeg
    except ImportError as e:
        raise ImportError("Recording videos needs imageio-ffmpeg: pip install 'seqpolicy[video]'.") from e
    return imageio_ffmpeg


# -- writing -----------------------------------------------------------------------------------------------

def unique_path(folder: Path, stem: str, suffix: str = ".mp4") -> Path:
    """``folder/stem.mp4``, or ``stem-1.mp4``, ``stem-2.mp4``... whichever does not exist yet."""
    candidate, k = folder / f"{stem}{suffix}", 0
    while candidate.exists():
        k += 1
        candidate = folder / f"{stem}-{k}{suffix}"
    return candidate


def _claim(tmp: Path, folder: Path, stem: str) -> Path:
    """Move ``tmp`` to a unique final name without ever replacing an existing file."""
    while True:
        final = unique_path(folder, stem)
        try:
            os.link(tmp, final)  # fails if `final` appeared meanwhile: atomic no-overwrite
        except FileExistsError:
            continue
        except OSError:  # filesystem without hard links
            if final.exists():
                continue
            os.replace(tmp, final)
            return final
        tmp.unlink()
        return final


def check_video_folder(folder: str | os.PathLike) -> Path:
    """Create ``folder`` if needed and check that files can be written there.

    Raises:
        OSError: with the folder and the reason, before any time is spent evaluating.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".seqpolicy-write-test-{uuid.uuid4().hex[:8]}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise OSError(f"Cannot write videos to {folder}: {e.strerror or e}. Choose another folder "
                      "(--video-dir) or turn video off (--no-video).") from e
    return folder


class VideoWriter:
    """Stream RGB frames into ``folder/<stem>.mp4`` (a fresh unique name), written only when complete.

    Use as a context manager: leaving the block normally publishes the file, an exception (including
    KeyboardInterrupt) deletes the partial one.
    """

    def __init__(self, folder: str | os.PathLike, stem: str, fps: float = 30.0):
        self.folder = Path(folder)
        self.stem = stem
        self.fps = float(fps)
        self.frames = 0
        self.blank_frames = 0
        self.size: tuple[int, int] | None = None  # (width, height)
        self.path: Path | None = None  # the final path, once closed
        self._tmp = self.folder / f".{stem}.partial-{uuid.uuid4().hex[:8]}.mp4"
        self._gen = None

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def append(self, frame: np.ndarray, blank: bool | None = None) -> None:
        """Add one (H, W, 3) uint8 frame. ``blank`` overrides the all-black test (e.g. for overlaid frames)."""
        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"frames must have shape (height, width, 3), got {frame.shape}.")
        if frame.dtype != np.uint8:
            frame = np.clip(frame, 0, 255).astype(np.uint8)
        # yuv420p needs even sizes: pad by one black row/column instead of rescaling
        h, w = frame.shape[0] + frame.shape[0] % 2, frame.shape[1] + frame.shape[1] % 2
        if (h, w) != frame.shape[:2]:
            frame = np.pad(frame, ((0, h - frame.shape[0]), (0, w - frame.shape[1]), (0, 0)))
        if self._gen is None:
            ffmpeg = _require_imageio_ffmpeg()
            self.folder.mkdir(parents=True, exist_ok=True)
            self.size = (w, h)
            self._gen = ffmpeg.write_frames(str(self._tmp), self.size, fps=self.fps, codec="libx264",
                                            macro_block_size=1, ffmpeg_log_level="error")
            self._gen.send(None)
        elif (w, h) != self.size:
            raise ValueError(f"frame size changed from {self.size} to {(w, h)} within one video.")
        if blank is None:
            blank = int(frame.max()) <= BLANK_LEVEL
        self.blank_frames += bool(blank)
        self._gen.send(np.ascontiguousarray(frame))
        self.frames += 1

    def close(self) -> Path:
        """Finish the file and move it to its final unique name (returned)."""
        if self.path is not None:
            return self.path
        if self._gen is None:
            raise ValueError("No frames were written: nothing to save.")
        try:
            self._gen.close()
        except BaseException:
            self._tmp.unlink(missing_ok=True)
            raise
        self._gen = None
        self.path = _claim(self._tmp, self.folder, self.stem)
        return self.path

    def abort(self) -> None:
        """Stop ffmpeg and delete the partial file."""
        if self._gen is not None:
            with contextlib.suppress(Exception):  # ffmpeg may already be gone
                self._gen.close()
            self._gen = None
        self._tmp.unlink(missing_ok=True)


def video_stats(path: str | os.PathLike) -> dict:
    """Decode a video and return its frame count, size and the number of all-black frames."""
    ffmpeg = _require_imageio_ffmpeg()
    gen = ffmpeg.read_frames(str(path))
    meta = gen.__next__()
    w, h = meta["size"]
    frames = blank = 0
    for raw in gen:
        frame = np.frombuffer(raw, dtype=np.uint8)
        frames += 1
        blank += int(frame.max()) <= BLANK_LEVEL
    return {"frames": frames, "blank_frames": blank, "width": w, "height": h, "fps": meta.get("fps")}


# -- overlay -----------------------------------------------------------------------------------------------

def draw_overlay(frame: np.ndarray, lines: Sequence[str]) -> np.ndarray:
    """Write ``lines`` in the top-left corner of ``frame`` on a dark box (Pillow, shipped with imageio).

    Frames under 240 pixels high are first enlarged by an integer factor (nearest neighbour).
    """
    from PIL import Image, ImageDraw, ImageFont

    if frame.shape[0] < 240:  # small frames (toy envs) are enlarged so that the text covers less of them
        k = -(-240 // frame.shape[0])
        frame = np.repeat(np.repeat(frame, k, axis=0), k, axis=1)
    img = Image.fromarray(np.ascontiguousarray(frame))
    size = max(9, frame.shape[0] // 28)
    try:
        font = ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has one fixed-size bitmap font
        font = ImageFont.load_default()
    draw = ImageDraw.Draw(img, "RGBA")
    text = "\n".join(lines)
    box = draw.multiline_textbbox((4, 3), text, font=font, spacing=2)
    draw.rectangle((box[0] - 3, box[1] - 2, box[2] + 3, box[3] + 2), fill=(0, 0, 0, 150))
    draw.multiline_text((4, 3), text, font=font, fill=(255, 255, 255, 255), spacing=2)
    return np.asarray(img)


def _overlay_lines(step: int, total: float, target: float | None, title: str | None) -> list[str]:
    lines = [title] if title else []
    lines += [f"step {step}", f"return {total:.1f}"]
    if target is not None:
        lines.append(f"RTG target {target:.1f}, to go {target - total:.1f}")
    return lines


def _agent_target(agent: Any) -> float | None:
    target = getattr(agent, "target_return", None)
    return float(target) if isinstance(target, (int, float, np.floating, np.integer)) else None


# -- recording ---------------------------------------------------------------------------------------------

@dataclass
class VideoInfo:
    """What was recorded."""

    path: str
    episode: int | None
    """Index of the evaluated episode it replays (None for side-by-side videos)."""
    seed: int
    frames: int
    blank_frames: int
    returns: dict[str, float]
    """Return of the recorded episode per agent (one entry unless side by side)."""
    lengths: dict[str, int]
    evaluated_return: float | None
    """What the evaluation measured for this episode, when the video replays one."""
    seconds: float
    replay: Literal["actions", "agent"] = "agent"
    """How the episode was played: ``"actions"``, the evaluation's own actions (the scored episode itself), or
    ``"agent"``, the agent acting again."""

    @property
    def matches_evaluation(self) -> bool | None:
        if self.evaluated_return is None:
            return None
        (ret,) = self.returns.values()
        return bool(np.isclose(ret, self.evaluated_return, rtol=1e-6, atol=1e-6))

    def to_dict(self) -> dict:
        return {**asdict(self), "matches_evaluation": self.matches_evaluation}


def select_episodes(returns: Sequence[float], record: RecordMode) -> list[int]:
    """Indices of the episodes to record: ``first``, ``best`` (highest return), ``worst`` or ``all``."""
    if record not in RECORD_MODES:
        raise ValueError(f"record must be one of {', '.join(RECORD_MODES)}, got {record!r}.")
    if len(returns) == 0:
        raise ValueError("No episodes to choose from.")
    if record == "first":
        return [0]
    if record == "best":
        return [int(np.argmax(returns))]
    if record == "worst":
        return [int(np.argmin(returns))]
    return list(range(len(returns)))


def _make_render_env(env: EnvLike, size: tuple[int, int], env_kwargs: dict | None, wrappers: Sequence[Wrapper],
                     max_episode_steps: int | None, fast: bool = False):
    setup_headless()
    made = make_env(env, env_kwargs=env_kwargs, wrappers=wrappers, max_episode_steps=max_episode_steps,
                    render_mode="rgb_array", render_size=size)
    _follow_tracked_body(made)
    if fast:
        _disable_render_effects(made)
    return made


def _follow_tracked_body(env) -> None:
    """Make Gymnasium's MuJoCo default camera follow the body the env names (e.g. Hopper's torso).

    Their camera configs set ``trackbodyid`` on a free camera, which mujoco-py's viewer followed and MuJoCo's
    renderer does not: a hopper leaves the frame within ~150 steps. Switching the camera to MuJoCo's tracking
    mode keeps the env's distance, angles and body. A config that names no body (HalfCheetah's sets only the
    distance: the cheetah runs out of the frame within ~100 steps) follows the model's first body, the root of
    the robot. Envs rendered through a named camera are left alone.
    """
    try:
        import mujoco

        renderer = env.unwrapped.mujoco_renderer
        if getattr(renderer, "camera_name", None) is not None or renderer.camera_id not in (None, -1):
            return
        cam = renderer._get_viewer(render_mode="rgb_array").cam
    except (ImportError, AttributeError, TypeError):
        return  # not a Gymnasium MuJoCo env
    if cam.type != mujoco.mjtCamera.mjCAMERA_FREE:
        return
    if cam.trackbodyid < 0:
        if env.unwrapped.model.nbody < 2:
            return  # only the world: nothing moves
        cam.trackbodyid = 1
    renderer.camera_id = None  # camera_id -1 makes every render() reset the camera to free
    cam.type = mujoco.mjtCamera.mjCAMERA_TRACKING


def _disable_render_effects(env) -> None:
    """Turn off MuJoCo's shadows and reflections: about 3x faster frames with software OpenGL (Mesa)."""
    import mujoco

    try:
        viewer = env.unwrapped.mujoco_renderer._get_viewer(render_mode="rgb_array")  # Gymnasium's MuJoCo envs
        viewer.scn.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
        viewer.scn.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
    except (AttributeError, TypeError) as e:
        warnings.warn(f"fast rendering applies to Gymnasium's MuJoCo envs only; rendering as usual ({e}).",
                      stacklevel=3)


def _render(env, env_id: str) -> np.ndarray:
    try:
        frame = env.render()
    except Exception as e:  # GL backends raise many types; say what failed in one line
        raise RenderError(f"Cannot render {env_id}: {type(e).__name__}: {e}. {_render_hint()}") from e
    if frame is None:
        raise RenderError(f"{env_id} returned no frame from render(): it needs render_mode='rgb_array'.")
    return np.asarray(frame)


def _stem(env_id: str, label: str, seed: int, episode: int | None) -> str:
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in f"{env_id}_{label}")
    ep = f"_ep{episode}" if episode is not None else ""
    return f"{safe}{ep}_seed{seed}_{time.strftime('%Y%m%d-%H%M%S')}"


def record_video(agent: Any, env: EnvLike, folder: str | os.PathLike = "videos", *,
                 result: EvalResult | None = None, record: RecordMode = "first", seed: int = 0,
                 size: tuple[int, int] = DEFAULT_SIZE, fps: float | None = None, overlay: bool = True,
                 fast: bool = True, label: str | None = None, env_kwargs: dict | None = None,
                 wrappers: Sequence[Wrapper] = (), max_episode_steps: int | None = None,
                 allow_env_mismatch: bool = False) -> list[VideoInfo]:
    """Record episodes of ``agent`` to mp4 files in ``folder``, one file per episode.

    Args:
        agent: any agent (``reset``/``act``).
        env: env id, make-function (accepting ``render_mode``) as for :func:`~seqpolicy.evaluate`.
        folder: where the videos go (created if needed).
        result: an evaluation of this agent on this env; episodes are chosen by ``record`` among its
            episodes and replayed with their seeds and the actions the evaluation took (the agent acts again
            only where ``result.actions`` is None, e.g. a result read from JSON). Without it, ``record`` must be
            ``"first"`` and episode 0 is played by the agent with ``seed``.
        record: ``first``, ``best``, ``worst`` or ``all``.
        seed: base seed when ``result`` is None.
        size: (width, height) of rendered frames, for envs that accept a frame size.
        fps: frames per second of the video (default: the env's ``render_fps``, else 30).
        overlay: draw step, return so far and (for agents with ``target_return``) the return-to-go target.
        fast: MuJoCo envs render without shadows and reflections (about 3x faster with software OpenGL; the
            default); False renders them.
        label: agent name used in file names and the overlay (default: the agent class name).
        env_kwargs, wrappers, max_episode_steps, allow_env_mismatch: as for :func:`~seqpolicy.evaluate`.

    Returns:
        One :class:`VideoInfo` per recorded episode. Warns when frames are all black or a replay's return
        differs from the evaluated one.

    Example:
        >>> import seqpolicy                                                   # doctest: +SKIP
        >>> result = seqpolicy.evaluate(agent, "Hopper-v4", n_episodes=10)     # doctest: +SKIP
        >>> record_video(agent, "Hopper-v4", "videos", result=result, record="best")  # doctest: +SKIP
    """
    if result is None:
        if record != "first":
            raise ValueError(f"record={record!r} needs the evaluation result to choose from: pass result=.")
        episodes, seeds, evaluated, scored = [0], [seed], [None], [None]
    else:
        episodes = select_episodes(result.returns, record)
        seeds = [result.seeds[i] for i in episodes]
        evaluated = [result.returns[i] for i in episodes]
        scored = [None if result.actions is None else result.actions[i] for i in episodes]
    label = label or type(agent).__name__
    folder = check_video_folder(folder)
    renv = _make_render_env(env, size, env_kwargs, wrappers, max_episode_steps, fast)
    env_id = env_label(renv, env if isinstance(env, str) else label)
    infos = []
    try:
        check_agent_env(agent, renv, env_id, allow_env_mismatch=allow_env_mismatch)
        fps = fps or float(renv.metadata.get("render_fps") or 30)
        for episode, ep_seed, ev, actions in zip(episodes, seeds, evaluated, scored, strict=True):
            start = time.perf_counter()
            with VideoWriter(folder, _stem(env_id, label, ep_seed, episode), fps) as writer:
                total, steps = _play(agent, renv, env_id, ep_seed, writer, overlay, actions)
            info = VideoInfo(path=str(writer.path), episode=episode, seed=ep_seed, frames=writer.frames,
                             blank_frames=writer.blank_frames, returns={label: total}, lengths={label: steps},
                             evaluated_return=ev, seconds=time.perf_counter() - start,
                             replay="agent" if actions is None else "actions")
            _warn_problems(info)
            infos.append(info)
    finally:
        if not isinstance(env, gymnasium.Env):
            renv.close()
    return infos


def _play(agent: Any, env, env_id: str, seed: int, writer: VideoWriter, overlay: bool,
          actions: np.ndarray | None) -> tuple[float, int]:
    """Play one episode with rendering, streaming frames to ``writer``: the recorded ``actions`` when given,
    else the agent's."""
    target = _agent_target(agent)

    def frame(steps: int, total: float) -> None:
        _write(writer, _render(env, env_id), overlay, _overlay_lines(steps, total, target, None))

    if actions is not None:
        return replay_episode(env, seed, actions, on_step=frame)
    return run_episode(agent, env, seed, on_step=frame)


def _write(writer: VideoWriter, frame: np.ndarray, overlay: bool, lines: list[str]) -> None:
    blank = int(frame.max()) <= BLANK_LEVEL  # judged before the overlay adds text
    writer.append(draw_overlay(frame, lines) if overlay else frame, blank=blank)


def _warn_problems(info: VideoInfo) -> None:
    if info.blank_frames:
        warnings.warn(f"{info.blank_frames} of {info.frames} frames in {info.path} are all black: the renderer "
                      f"is probably not working. {_render_hint()}", stacklevel=3)
    if info.matches_evaluation is False:
        (ret,) = info.returns.values()
        why = ("the env is not deterministic given its seed and actions, or was made otherwise (e.g. another "
               "max_episode_steps)" if info.replay == "actions" else "the agent acted otherwise when asked again "
               "(sampling, another batch or thread count; pass the result of evaluate() itself, which keeps "
               "the actions), or the env is not deterministic")
        warnings.warn(f"The recorded replay of episode {info.episode} (seed {info.seed}) returned {ret:.3f}, the "
                      f"evaluation measured {info.evaluated_return:.3f}: {why}. The video shows the replay.",
                      stacklevel=3)


def record_side_by_side(agents: Mapping[str, Any], env: EnvLike, folder: str | os.PathLike = "videos", *,
                        seed: int = 0, size: tuple[int, int] = DEFAULT_SIZE, fps: float | None = None,
                        overlay: bool = True, fast: bool = True, env_kwargs: dict | None = None,
                        wrappers: Sequence[Wrapper] = (), max_episode_steps: int | None = None,
                        allow_env_mismatch: bool = False) -> VideoInfo:
    """One video with the agents side by side, each on its own env reset with the same ``seed``.

    ``allow_env_mismatch`` (as for :func:`~seqpolicy.evaluate`) lets agents made for another env id or version act.

    An agent whose episode has ended keeps showing its last frame (darkened) until every episode has ended.
    """
    if not agents:
        raise ValueError("record_side_by_side needs at least one agent.")
    if isinstance(env, gymnasium.Env):
        raise ValueError("record_side_by_side needs an env id or a make-function (one env per agent).")
    folder = check_video_folder(folder)
    names = list(agents)
    envs = [_make_render_env(env, size, env_kwargs, wrappers, max_episode_steps, fast) for _ in names]
    env_id = env_label(envs[0], "env")
    start = time.perf_counter()
    try:
        for name in names:
            check_agent_env(agents[name], envs[0], env_id, allow_env_mismatch=allow_env_mismatch)
        fps = fps or float(envs[0].metadata.get("render_fps") or 30)
        obs, rewards, totals, steps, done, last = {}, {}, {}, {}, {}, {}
        for name, e in zip(names, envs, strict=True):
            agents[name].reset(seed=seed)
            obs[name], _ = e.reset(seed=seed)
            rewards[name], totals[name], steps[name], done[name] = None, 0.0, 0, False
        with VideoWriter(folder, _stem(env_id, "-vs-".join(names), seed, None), fps) as w:
            while True:
                panels, blank = [], True
                for name, e in zip(names, envs, strict=True):
                    if not done[name]:
                        last[name] = _render(e, env_id)
                    frame = last[name] if not done[name] else (last[name] * 0.5).astype(np.uint8)
                    blank &= int(last[name].max()) <= BLANK_LEVEL
                    lines = _overlay_lines(steps[name], totals[name], _agent_target(agents[name]), name)
                    panels.append(draw_overlay(frame, lines + (["done"] if done[name] else []))
                                  if overlay else frame)
                w.append(_hstack(panels), blank=blank)
                if all(done.values()):
                    break
                for name, e in zip(names, envs, strict=True):
                    if done[name]:
                        continue
                    action = agents[name].act(obs[name], rewards[name])
                    obs[name], rewards[name], term, trunc, info = e.step(action)
                    totals[name] += info.get("raw_reward", rewards[name])
                    steps[name] += 1
                    done[name] = bool(term or trunc)
    finally:
        for e in envs:
            e.close()
    info = VideoInfo(path=str(w.path), episode=None, seed=seed, frames=w.frames, blank_frames=w.blank_frames,
                     returns={k: float(v) for k, v in totals.items()}, lengths=dict(steps),
                     evaluated_return=None, seconds=time.perf_counter() - start)
    _warn_problems(info)
    return info


def _hstack(panels: list[np.ndarray]) -> np.ndarray:
    h = max(p.shape[0] for p in panels)
    padded = [np.pad(p, ((0, h - p.shape[0]), (0, 0), (0, 0))) for p in panels]
    return np.concatenate(padded, axis=1)
