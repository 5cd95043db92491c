"""Stable-Baselines3 baselines (SAC, TD3, PPO) with rl-zoo-style hyperparameters.

They make the policies that offline datasets are collected from, the way D4RL made its MuJoCo datasets
(an expert, a policy stopped at about a third of the expert's return, and the replay buffer up to there).

A run writes into one folder::

    run.json                          config, hyperparameters, versions, status, every checkpoint's score
    checkpoints/step_0010000.zip      SB3 model (a pickle-based zip: load only the ones you made)
    checkpoints/step_0010000.json     card: step, wall time, evaluation returns (raw, per episode)
    final.zip / final.json            the model when training stopped (finished, budget or signal)
    replay.npz                        with keep_replay: every transition in order (plain arrays, no pickle)

Every file is written atomically, so a kill leaves the last complete checkpoint loadable. A folder that already
holds a run is refused unless ``overwrite`` (which deletes it first): runs do not resume, and a second run into the
same folder would mix its checkpoints with the first's.

Example:
    >>> from seqpolicy.training.baseline import BaselineConfig, train_baseline
    >>> cfg = BaselineConfig(algo="td3", env_id="seqpolicy/PointReach-v0", steps=300,
    ...                      checkpoint_every=150, eval_episodes=2, overrides={"learning_starts": 100})
    >>> result = train_baseline(cfg, "/tmp/pointreach-td3")  # doctest: +SKIP
"""

from __future__ import annotations

import io
import math
import os
import signal
import threading
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from seqpolicy.agents.sb3 import ALGOS as SB3_ALGOS
from seqpolicy.common.artifact import atomic_write_bytes, atomic_write_json, package_versions, read_json
from seqpolicy.common.envs import gym_make
from seqpolicy.evaluation.evaluate import evaluate
from seqpolicy.evaluation.scores import env_name_and_version

REPLAY_FILE = "replay.npz"
RUN_OUTPUTS = ("run.json", "checkpoints", "final.zip", "final.json", REPLAY_FILE)  # what a run writes

# rl-baselines3-zoo hyperparameters for the MuJoCo locomotion tasks (hyperparams/{td3,sac,ppo}.yml, *-v4 entries).
# TD3 and SAC: rl-zoo gives HalfCheetah, Hopper and Walker2d the same "mujoco-defaults" (checked in its td3.yml and
# sac.yml), so one table serves every env. PPO: the defaults below (SB3's, which rl-zoo's mujoco-defaults keep),
# replaced per env by ZOO_PPO_TUNED.
ZOO_HYPERPARAMS: dict[str, dict[str, Any]] = {
    "td3": {
        "learning_rate": 1e-3,
        "buffer_size": 1_000_000,
        "learning_starts": 10_000,
        "batch_size": 256,
        "train_freq": 1,
        "gradient_steps": 1,
        "action_noise_std": 0.1,
        # rl-zoo uses [400, 300]; the TD3 authors' current code uses [256, 256]: 86 vs 56 env steps/s on Hopper-v4
        # on this project's 2-core CPU machine (1 torch thread, measured).
        "net_arch": [256, 256],
    },
    "sac": {
        "learning_rate": 3e-4,
        "buffer_size": 1_000_000,
        "learning_starts": 10_000,
        "batch_size": 256,
        "train_freq": 1,
        "gradient_steps": 1,
        "net_arch": [256, 256],
    },
    "ppo": {
        # rl-zoo's tuned MuJoCo PPOs also wrap the env in VecNormalize; we leave it out so the saved zip is the
        # whole policy (no separate normalisation statistics to carry around).
        "n_steps": 2048,
        "batch_size": 64,
        "gamma": 0.99,
        "learning_rate": 3e-4,
        "ent_coef": 0.0,
        "clip_range": 0.2,
        "n_epochs": 10,
        "gae_lambda": 0.95,
        "max_grad_norm": 0.5,
        "vf_coef": 0.5,
        # one policy shape for every env: rl-zoo's Hopper and HalfCheetah tunings (log std -2, [256, 256], ReLU);
        # its Walker2d tuning keeps SB3's policy defaults (log std 0, [64, 64], tanh)
        "log_std_init": -2.0,
        "net_arch": [256, 256],
    },
}

# rl-zoo's per-env PPO tunings (hyperparams/ppo.yml), keyed by env name without version.
ZOO_PPO_TUNED: dict[str, dict[str, Any]] = {
    "Hopper": {"n_steps": 512, "batch_size": 32, "gamma": 0.999, "learning_rate": 9.80828e-05,
               "ent_coef": 0.00229519, "clip_range": 0.2, "n_epochs": 5, "gae_lambda": 0.99, "max_grad_norm": 0.7,
               "vf_coef": 0.835671},
    "HalfCheetah": {"n_steps": 512, "batch_size": 64, "gamma": 0.98, "learning_rate": 2.0633e-05,
                    "ent_coef": 0.000401762, "clip_range": 0.1, "n_epochs": 20, "gae_lambda": 0.92,
                    "max_grad_norm": 0.8, "vf_coef": 0.58096},
    "Walker2d": {"n_steps": 512, "batch_size": 32, "gamma": 0.99, "learning_rate": 5.05041e-05,
                 "ent_coef": 0.000585045, "clip_range": 0.1, "n_epochs": 20, "gae_lambda": 0.95, "max_grad_norm": 1.0,
                 "vf_coef": 0.871923},
}


BASELINE_ALGOS = tuple(name.lower() for name in SB3_ALGOS if name.lower() in ZOO_HYPERPARAMS)
"""The SB3 algorithms this module trains (lower case, as ``BaselineConfig.algo``): those with rl-zoo settings above."""


def require_sb3():
    """Import stable_baselines3, or explain which extra installs it."""
    try:
        import stable_baselines3
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("SB3 baselines need Stable-Baselines3: pip install 'seqpolicy[sb3]'") from e
    return stable_baselines3


@dataclass(frozen=True)
class BaselineConfig:
    """How to train one SB3 baseline."""

    env_id: str
    """Gymnasium id of the environment."""
    algo: str = "td3"
    """One of sac, td3, ppo."""
    steps: int = 1_000_000
    """Environment steps to train for (unless max_minutes stops earlier)."""
    seed: int = 0
    """Seed of the training env, the algorithm and the evaluation episodes."""
    checkpoint_every: int = 10_000
    """Save and evaluate a checkpoint every this many env steps."""
    eval_episodes: int = 10
    """Deterministic evaluation episodes per checkpoint."""
    keep_replay: bool = False
    """Write every transition in order to replay.npz (off-policy algorithms only), for medium-replay."""
    max_minutes: float | None = None
    """Wall-clock budget; training stops gracefully and saves when it runs out."""
    device: str = "cpu"
    """Torch device for SB3 ("cpu" is fastest for these small networks)."""
    threads: int | None = 1
    """torch.set_num_threads for the run (None leaves it alone)."""
    overrides: dict[str, Any] = field(default_factory=dict)
    """Hyperparameters that replace the rl-zoo ones (same keys as ZOO_HYPERPARAMS)."""

    def __post_init__(self):
        if self.algo not in BASELINE_ALGOS:
            raise ValueError(f"algo={self.algo!r} is not supported: choose one of {', '.join(BASELINE_ALGOS)}.")
        if self.steps <= 0 or self.checkpoint_every <= 0:
            raise ValueError(f"steps ({self.steps}) and checkpoint_every ({self.checkpoint_every}) must be > 0.")
        if self.eval_episodes < 1:
            raise ValueError(f"eval_episodes must be >= 1, got {self.eval_episodes}.")
        if self.keep_replay and self.algo == "ppo":
            raise ValueError("keep_replay needs an off-policy algorithm (sac or td3): PPO has no replay buffer.")
        if self.max_minutes is not None and self.max_minutes <= 0:
            raise ValueError(f"max_minutes must be > 0, got {self.max_minutes}.")
        unknown = set(self.overrides) - set(ZOO_HYPERPARAMS[self.algo])
        if unknown:
            raise ValueError(f"Unknown hyperparameter(s) for {self.algo}: {sorted(unknown)}; "
                             f"known: {sorted(ZOO_HYPERPARAMS[self.algo])}.")

    def hyperparams(self) -> dict[str, Any]:
        """rl-zoo hyperparameters for this algorithm and env, with the overrides applied (what the run uses)."""
        tuned = ZOO_PPO_TUNED.get(env_name_and_version(self.env_id)[0], {}) if self.algo == "ppo" else {}
        hp = {**ZOO_HYPERPARAMS[self.algo], **tuned, **self.overrides}
        if self.keep_replay:
            # the buffer must hold the whole run so that it stays in time order (no wrap-around)
            hp["buffer_size"] = max(int(hp["buffer_size"]), self.steps)
        if "learning_starts" in hp and hp["learning_starts"] >= self.steps:
            warnings.warn(f"learning_starts={hp['learning_starts']} >= steps={self.steps}: the run would never "
                          f"learn; using {self.steps // 10} instead.", stacklevel=2)
            hp["learning_starts"] = self.steps // 10
        return hp


@dataclass
class BaselineResult:
    """What a baseline run produced."""

    out_dir: Path
    status: str  # "finished", "budget" (max_minutes ran out) or "interrupted" (SIGINT/SIGTERM)
    steps: int
    wall_s: float
    checkpoints: list[dict] = field(default_factory=list)
    signal: int | None = None  # with status "interrupted": the signal's number

    @property
    def best(self) -> dict:
        """The checkpoint with the highest mean evaluation return."""
        return max(self.checkpoints, key=lambda c: c["eval_return_mean"])


class _Predict:
    """``model.predict(obs, deterministic=True)`` behind the agent protocol that :func:`evaluate` drives.

    Not an :class:`~seqpolicy.agents.sb3.SB3Agent`: its ``reset(seed)`` reseeds SB3's global random generators,
    which in the middle of training would change the rest of the run, and its actions pass through [-1, 1] and
    back, which can move them by a rounding step on Boxes other than [-1, 1].
    """

    def __init__(self, model):
        self.model = model

    def reset(self, seed: int | None = None, envs=None) -> None:
        pass  # deterministic and memoryless: nothing to seed or forget

    def act(self, obs: np.ndarray, reward: float | None = None) -> np.ndarray:
        return self.model.predict(obs, deterministic=True)[0]


def evaluate_sb3(model, env_id: str, episodes: int, seed: int) -> list[float]:
    """Raw undiscounted returns of ``model``'s deterministic policy, one per episode (seeds seed, seed+1, ...),
    from the evaluation harness (:func:`seqpolicy.evaluation.evaluate.evaluate`, one env)."""
    return evaluate(_Predict(model), env_id, n_episodes=episodes, seed=seed).returns


def save_sb3_zip(model, path: str | os.PathLike) -> None:
    """Save an SB3 model atomically (SB3 writes into a buffer, we rename the finished file into place)."""
    buf = io.BytesIO()
    model.save(buf)
    atomic_write_bytes(path, buf.getvalue())


def _build_model(cfg: BaselineConfig, env):
    sb3 = require_sb3()
    import torch
    from stable_baselines3.common.noise import NormalActionNoise

    hp = cfg.hyperparams()
    common = {"seed": cfg.seed, "device": cfg.device, "verbose": 0}
    if cfg.algo == "ppo":
        kw = {k: v for k, v in hp.items() if k not in ("net_arch", "log_std_init")}
        policy_kwargs = {"net_arch": {"pi": list(hp["net_arch"]), "vf": list(hp["net_arch"])},
                         "log_std_init": hp["log_std_init"], "ortho_init": False, "activation_fn": torch.nn.ReLU}
        return sb3.PPO("MlpPolicy", env, policy_kwargs=policy_kwargs, **kw, **common)
    kw = {k: v for k, v in hp.items() if k not in ("net_arch", "action_noise_std")}
    kw["buffer_size"] = int(kw["buffer_size"])
    policy_kwargs = {"net_arch": list(hp["net_arch"])}
    if cfg.algo == "td3":
        n = env.action_space.shape[0]
        noise = NormalActionNoise(np.zeros(n), hp["action_noise_std"] * np.ones(n))
        return sb3.TD3("MlpPolicy", env, action_noise=noise, policy_kwargs=policy_kwargs, **kw, **common)
    return sb3.SAC("MlpPolicy", env, policy_kwargs=policy_kwargs, **kw, **common)


def replay_arrays(model) -> dict[str, np.ndarray]:
    """The transitions in an SB3 replay buffer, in time order, as D4RL-style flat arrays.

    ``terminals`` are real terminations and ``timeouts`` time-limit truncations (SB3 stores done = either).
    """
    buf = model.replay_buffer
    if buf.full:
        raise RuntimeError("The replay buffer wrapped around, so its order is lost; keep_replay sizes the buffer "
                           "to the run, so this means buffer_size was overridden below steps.")
    n = buf.pos
    dones = buf.dones[:n, 0].astype(bool)
    timeouts = buf.timeouts[:n, 0].astype(bool)
    return {
        "observations": buf.observations[:n, 0].astype(np.float32),
        "actions": buf.actions[:n, 0].astype(np.float32),
        "rewards": buf.rewards[:n, 0].astype(np.float32),
        "next_observations": buf.next_observations[:n, 0].astype(np.float32),
        "terminals": dones & ~timeouts,
        "timeouts": timeouts,
    }


def save_replay(model, path: str | os.PathLike) -> int:
    """Write the replay buffer with :func:`replay_arrays` to an ``.npz`` (atomically); returns its length."""
    arrays = replay_arrays(model)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())
    return len(arrays["rewards"])


def train_baseline(cfg: BaselineConfig, out_dir: str | os.PathLike, progress: bool = True,
                   overwrite: bool = False) -> BaselineResult:
    """Train an SB3 baseline, checkpointing (with evaluation returns) into ``out_dir``.

    Stops after ``cfg.steps`` env steps, when ``cfg.max_minutes`` run out, or on SIGINT/SIGTERM; in every
    case the final model (and replay buffer, if kept) is saved before returning.

    ``out_dir`` must not hold a run already (FileExistsError) unless ``overwrite``, which deletes that run (saying
    what, in one line) once the new one is built.

    Returns:
        The run's status, step count, wall time and checkpoint list (also in ``out_dir/run.json``).
    """
    from seqpolicy.training.run_folder import check_run_folder, clear_run_folder

    check_run_folder(out_dir, resume=False, overwrite=overwrite, names=RUN_OUTPUTS, can_resume=False)
    require_sb3()
    import torch
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.monitor import Monitor

    out = Path(out_dir)
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    env = Monitor(gym_make(cfg.env_id))
    env.reset(seed=cfg.seed)
    env.action_space.seed(cfg.seed)
    model = _build_model(cfg, env)
    if overwrite:
        clear_run_folder(out, RUN_OUTPUTS)
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    deadline = t0 + cfg.max_minutes * 60 if cfg.max_minutes is not None else math.inf
    state: dict[str, Any] = {"status": "running", "checkpoints": [], "stop": None, "signal": None}

    def write_run_json() -> None:
        atomic_write_json(out / "run.json", {
            "kind": "sb3-baseline", "config": asdict(cfg), "hyperparams": cfg.hyperparams(),
            "status": state["status"], "steps": int(model.num_timesteps),
            "wall_s": round(time.monotonic() - t0, 1), "versions": {**package_versions(),
                                                                    "stable_baselines3": require_sb3().__version__},
            "checkpoints": state["checkpoints"],
        })

    def checkpoint(name: str) -> dict:
        returns = evaluate_sb3(model, cfg.env_id, cfg.eval_episodes, seed=cfg.seed + 10_000)
        zip_path = out / f"{name}.zip"
        save_sb3_zip(model, zip_path)
        card = {"step": int(model.num_timesteps), "wall_s": round(time.monotonic() - t0, 1),
                "zip": str(zip_path.relative_to(out)), "algo": cfg.algo, "env_id": cfg.env_id, "seed": cfg.seed,
                "eval_seed": cfg.seed + 10_000, "eval_episodes": cfg.eval_episodes,
                "eval_return_mean": float(np.mean(returns)), "eval_return_std": float(np.std(returns)),
                "eval_returns": [round(r, 3) for r in returns]}
        atomic_write_json(out / f"{name}.json", card)
        if cfg.keep_replay:
            save_replay(model, out / REPLAY_FILE)
        return card

    def on_signal(signum, _frame):
        state["stop"] = "interrupted"
        state["signal"] = state["signal"] or signum

    class _Callback(BaseCallback):
        def __init__(self, bar):
            super().__init__()
            self.bar = bar

        def _on_step(self) -> bool:
            step = self.model.num_timesteps
            if self.bar is not None:
                self.bar.update(1)
            if step % cfg.checkpoint_every == 0:
                card = checkpoint(f"checkpoints/step_{step:07d}")
                state["checkpoints"].append(card)
                write_run_json()
                if self.bar is not None:
                    self.bar.set_postfix(eval_return=f"{card['eval_return_mean']:.0f}")
            if time.monotonic() > deadline:
                state["stop"] = "budget"
            return state["stop"] is None

    # stop gracefully (and save) on Ctrl-C or kill; signal handlers can only be set from the main thread
    in_main = threading.current_thread() is threading.main_thread()
    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)} if in_main else {}
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=cfg.steps, desc=f"{cfg.algo} {cfg.env_id}", unit="step", mininterval=5)
    try:
        write_run_json()
        model.learn(total_timesteps=cfg.steps, callback=_Callback(bar), progress_bar=False)
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        if bar is not None:
            bar.close()
    state["status"] = state["stop"] or "finished"
    final = checkpoint("final")
    final["status"] = state["status"]
    atomic_write_json(out / "final.json", final)
    if not state["checkpoints"] or state["checkpoints"][-1]["step"] != final["step"]:
        state["checkpoints"].append(final)
    write_run_json()
    env.close()
    return BaselineResult(out, state["status"], int(model.num_timesteps), time.monotonic() - t0, state["checkpoints"],
                          state["signal"])


def pick_expert_and_medium(checkpoints: list[dict], fraction: float = 1 / 3) -> tuple[dict, dict]:
    """D4RL's choice of policies from one training run's checkpoint cards.

    The expert is the checkpoint with the highest mean evaluation return; the medium policy is the checkpoint
    before it whose mean evaluation return is closest to ``fraction`` of the expert's (D4RL: "a policy stopped
    at about one third of expert return"; its replay buffer up to there is medium-replay).

    Returns:
        (expert card, medium card).
    """
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}.")
    cks = sorted(checkpoints, key=lambda c: c["step"])
    if not cks:
        raise ValueError("No checkpoints to choose from: the run saved none (train longer than checkpoint_every).")
    expert = max(cks, key=lambda c: c["eval_return_mean"])
    earlier = [c for c in cks if c["step"] < expert["step"]]
    if not earlier:
        raise ValueError(f"The best checkpoint (step {expert['step']}) is the first one, so there is no earlier "
                         "checkpoint to serve as the medium policy: train longer or checkpoint more often.")
    target = fraction * expert["eval_return_mean"]
    medium = min(earlier, key=lambda c: abs(c["eval_return_mean"] - target))
    return expert, medium


def load_run(out_dir: str | os.PathLike) -> dict:
    """Read a run's ``run.json`` (config, status and checkpoint scores)."""
    path = Path(out_dir) / "run.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: pass the folder written by seqpolicy-baseline train.")
    run = read_json(path, ": it is rewritten at every checkpoint of seqpolicy-baseline train; its "
                          "checkpoints/step_*.json cards hold the same scores.")
    if not isinstance(run, dict) or "checkpoints" not in run:
        raise ValueError(f"{path} is not a seqpolicy-baseline run record (no 'checkpoints').")
    return run
