"""The Trajectory Transformer as a Gymnasium agent: discretise, plan by beam search, act, remember.

As in the authors' ``scripts/plan.py``: the prefix is the last ``max_context_transitions`` discretised
transitions (reward as returned by the env, value replaced by a placeholder) followed by the current
observation; the action is the bin midpoint of the first planned action of the best beam. Actions are planned
in env units (the discretizer is fitted on raw actions, so the authors' thresholds work unchanged).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from seqpolicy.agents.base import ContextAgent
from seqpolicy.agents.tt.discretizer import Discretizer
from seqpolicy.agents.tt.planner import VALUE_PLACEHOLDER, PlannerConfig, beam_plan, greedy_first_actions
from seqpolicy.common.artifact import ArtifactError, load_artifact, load_network, save_pretrained_artifact
from seqpolicy.common.spaces import space_from_json, space_mismatch, space_to_json
from seqpolicy.common.torch_utils import resolve_device
from seqpolicy.models.trajectory_transformer import TrajectoryTransformer, TTConfig


class TrajectoryTransformerAgent(ContextAgent):
    """A trained TT plus its discretizer behind ``reset()`` / ``act(obs, reward)``.

    Args:
        model: the network.
        discretizer: the per-dimension bin edges the model was trained with (transition_dim rows).
        observation_space, action_space: the env's spaces.
        planner: search settings (a :class:`PlannerConfig`, the name of one of the planner's ``SEARCHES``, or
            None for ``paper``); ``**planner_settings`` override single fields, e.g. ``beam_width=32``.
        seed: seeds the planner's sampling. Every env's generator restarts from it when that env's context is
            cleared, so an env's random draws depend only on its own episode, not on the other envs of the
            batch. Its logits can still differ in the last bits with the batch (matmul kernels round
            differently for other batch sizes), and over hundreds of steps such a difference can flip a
            sampled token: the same seed in a batch of 10 and alone may play different episodes (equally
            likely ones). ``reset(seed=...)`` changes the seed; None draws a fresh one at each restart.
        device: where the model runs; ``"auto"`` picks a GPU if there is one.

    Example:
        >>> import gymnasium as gym, seqpolicy
        >>> agent = seqpolicy.TrajectoryTransformerAgent.load("envs/Hopper-v4/tt-medium")  # doctest: +SKIP
        >>> agent.reset(seed=0)  # doctest: +SKIP
        >>> env = gym.make("Hopper-v4"); obs, _ = env.reset(seed=0)  # doctest: +SKIP
        >>> action = agent.act(obs)  # doctest: +SKIP
    """

    kind = "tt"

    def __init__(self, model: TrajectoryTransformer, discretizer: Discretizer,
                 observation_space: gym.spaces.Box, action_space: gym.spaces.Box, *,
                 planner: PlannerConfig | str | None = None, env_id: str | None = None,
                 dataset_id: str | None = None, info: dict | None = None, seed: int | None = 0,
                 device: str | torch.device = "cpu", **planner_settings):
        super().__init__(observation_space, action_space)
        c = model.config
        if (c.observation_dim, c.action_dim) != (self.obs_dim, self.act_dim):
            raise ValueError(f"The model plans observations of size {c.observation_dim} and actions of size "
                             f"{c.action_dim}, but the env's are {self.obs_dim} and {self.act_dim}: this "
                             "checkpoint was trained for another environment.")
        if discretizer.thresholds.shape != (c.transition_dim, c.vocab_size + 1):
            raise ValueError(f"thresholds have shape {discretizer.thresholds.shape}, the model needs "
                             f"(transition_dim, N+1) = ({c.transition_dim}, {c.vocab_size + 1}).")
        if isinstance(planner, str) or planner is None:
            planner = PlannerConfig.search(planner or "paper")
        self.planner = PlannerConfig.from_dict({**planner.to_dict(), **planner_settings})
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.runtime: Any = None
        """What runs the planner's one-token steps when not the model itself: an
        :class:`~seqpolicy.agents.tt.onnx_step.OnnxStepModel` (``load_agent(dir, runtime="onnxruntime")`` or
        :meth:`use_onnxruntime`); None: PyTorch."""
        self.discretizer = discretizer
        self.env_id, self.dataset_id = env_id, dataset_id
        self.info = dict(info or {})
        self._seed_value = seed
        self.stats: dict = {}  # planner counters ("tokens"), read by benchmarks

    # -- context storage (hooks of ContextAgent) -------------------------------------------------------
    def _seed(self, seed: int) -> None:
        self._seed_value = int(seed)

    def _fresh_generator(self) -> torch.Generator:
        seed = self._seed_value if self._seed_value is not None else int(np.random.SeedSequence().generate_state(1)[0])
        return torch.Generator(device=self.device).manual_seed(seed)

    def _start_batch(self, n: int) -> None:
        self._gens = [self._fresh_generator() for _ in range(n)]
        self._context: list[list[np.ndarray]] = [[] for _ in range(n)]  # discretised past transitions
        self._prev_obs = np.zeros((n, self.obs_dim), dtype=np.float64)
        self._prev_act = np.zeros((n, self.act_dim), dtype=np.float64)
        self._plans: list[np.ndarray | None] = [None] * n  # remaining planned transitions (tokens)

    def _clear(self, idx: np.ndarray) -> None:
        for i in np.atleast_1d(idx).tolist():
            self._context[i], self._plans[i], self._gens[i] = [], None, self._fresh_generator()

    @torch.inference_mode()
    def _act_batch(self, obs: np.ndarray, rewards: np.ndarray, fresh: np.ndarray) -> np.ndarray:
        p, disc, o, a = self.planner, self.discretizer, self.obs_dim, self.act_dim
        n = obs.shape[0]
        replan = []
        for i in range(n):
            if self._paused[i]:  # its episode is no longer wanted (pause()): no context, no planning
                continue
            if not fresh[i]:  # the previous step is complete now that its reward has arrived
                row = np.concatenate([self._prev_obs[i], self._prev_act[i], [rewards[i], VALUE_PLACEHOLDER]])
                self._context[i] = (self._context[i] + [disc.encode(row)])[-p.max_context_transitions:]
            if fresh[i] or self._steps[i] % p.plan_freq == 0 or self._plans[i] is None:
                replan.append(i)
            else:
                self._plans[i] = self._plans[i][1:]
        # Envs with the same number of context transitions share one batched search.
        for n_ctx in sorted({len(self._context[i]) for i in replan}):
            group = [i for i in replan if len(self._context[i]) == n_ctx]
            prefixes = np.stack([np.concatenate(self._context[i] + [disc.encode(obs[i], slice(0, o))])
                                 for i in group])
            x, gens = torch.as_tensor(prefixes, device=self.device), [self._gens[i] for i in group]
            model = self.model if self.runtime is None else self.runtime
            if p.greedy_shortcut and p.action_is_fixed:
                plans = greedy_first_actions(model, x, p, gens, self.stats)
            else:
                plans, _ = beam_plan(model, disc, x, p, gens, self.stats)
            for i, plan in zip(group, plans.cpu().numpy(), strict=True):
                self._plans[i] = plan
        actions = np.stack([self._idle_action() if self._paused[i]
                            else disc.decode(self._plans[i][0, o:o + a], slice(o, o + a)) for i in range(n)])
        self._prev_obs[:] = obs
        self._prev_act[:] = actions
        return self._scaler.to_unit(actions)  # act() maps back to env units (identity for [-1, 1] boxes)

    def _idle_action(self) -> np.ndarray:
        """What a paused env is stepped with: the middle of the action Box, in env units."""
        return self._scaler.from_unit(np.zeros((1, self.act_dim), dtype=np.float32))[0]

    # -- artifacts -------------------------------------------------------------------------------------
    def use_onnxruntime(self) -> TrajectoryTransformerAgent:
        """Run the planner's one-token steps on onnxruntime (opt-in; returns the agent).

        Faster on a CPU (benchmarks/README.md has the shipped Hopper TT's figures), but the logits round
        differently (~2e-5), so sampled plans and the episodes they make can differ from PyTorch's: results made
        with it are not the zoo's (see :mod:`seqpolicy.agents.tt.onnx_step`). Needs the ``onnx`` extra; the agent
        on the CPU.
        """
        from seqpolicy.agents.tt.onnx_step import OnnxStepModel
        from seqpolicy.common.threads import acting_threads

        self.runtime = OnnxStepModel(self.model, acting_threads(self.threads))  # refuses a model off the CPU
        return self

    def _meta(self) -> dict:
        return {
            "model_config": self.model.config.to_dict(),
            "discretizer": self.discretizer.to_json(),
            "planner": self.planner.to_dict(),
            "env_id": self.env_id,
            "dataset_id": self.dataset_id,
            "observation_space": space_to_json(self.observation_space),
            "action_space": space_to_json(self.action_space),
            "info": self.info,
        }

    def save(self, folder: str | os.PathLike) -> Path:
        """Write the agent into ``folder``: ``config.json`` + ``model.safetensors`` that ``transformers``'
        ``TrajectoryTransformerModel.from_pretrained(folder)`` loads (transformers < 5), and ``agent.json`` with
        what transformers does not store (discretizer thresholds, planner settings, spaces)."""
        return save_pretrained_artifact(folder, self.kind, self.model, self._meta())

    @classmethod
    def load(cls, folder: str | os.PathLike, device: str | torch.device = "cpu",
             **planner_settings) -> TrajectoryTransformerAgent:
        """Load an agent written by :meth:`save` (or ``seqpolicy-train tt``); keyword arguments override
        planner settings, e.g. ``load(folder, beam_width=32)``."""
        tensors, meta = load_artifact(folder, cls.kind)
        try:
            model = load_network(TrajectoryTransformer, TTConfig.from_dict(meta["model_config"]), folder, tensors,
                                 meta)
            planner = PlannerConfig.from_dict(meta["planner"])
            return cls(model, Discretizer.from_json(meta["discretizer"]),
                       space_from_json(meta["observation_space"]), space_from_json(meta["action_space"]),
                       planner=planner, env_id=meta.get("env_id"), dataset_id=meta.get("dataset_id"),
                       info=meta.get("info"), device=device, **planner_settings)
        except (KeyError, RuntimeError, ValueError, TypeError) as e:
            raise ArtifactError(f"Cannot build a TT agent from {folder}: {e}") from e

    @classmethod
    def from_pretrained(cls, model_dir: str | os.PathLike, thresholds: np.ndarray, *,
                        planner: PlannerConfig | str | None = None,
                        observation_space: gym.spaces.Box | None = None,
                        action_space: gym.spaces.Box | None = None, observation_dim: int | None = None,
                        env_id: str | None = None, device: str | torch.device = "cpu",
                        **planner_settings) -> TrajectoryTransformerAgent:
        """Turn a Hugging Face or authors' TT checkpoint into an agent.

        Args:
            model_dir: a ``save_pretrained`` folder, or a folder (or file) of the authors' ``state_*.pt``.
            thresholds: (transition_dim, N+1) quantile edges the checkpoint was trained with (the authors
                keep them in a pickled ``data_config.pkl``; transpose their (N+1, transition_dim) array).
            observation_dim: needed for the authors' files only (see ``TrajectoryTransformer.from_pretrained``).
            observation_space, action_space: default to unbounded observations and [-1, 1] actions.
            **planner_settings: e.g. ``beam_width=32`` on top of ``planner`` (default ``paper``).
        """
        model = TrajectoryTransformer.from_pretrained(model_dir, observation_dim=observation_dim)
        c = model.config
        obs_space = observation_space or gym.spaces.Box(-np.inf, np.inf, (c.observation_dim,), np.float32)
        act_space = action_space or gym.spaces.Box(-1.0, 1.0, (c.action_dim,), np.float32)
        return cls(model, Discretizer(thresholds), obs_space, act_space, planner=planner, env_id=env_id,
                   info={"source": str(model_dir)}, device=device, **planner_settings)

    def check_env(self, env: gym.Env) -> None:
        """Refuse an env whose spaces differ from the ones this agent was made for."""
        mismatch = space_mismatch(self, env.observation_space, env.action_space)
        if mismatch is not None:
            what, mine, theirs = mismatch
            raise ValueError(f"This agent's {what} space {mine} does not match the env's {theirs}"
                             f"{f' (agent made for {self.env_id})' if self.env_id else ''}.")
