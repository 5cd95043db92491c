"""RewardFeed: the VecEnv wrapper that lets Stable-Baselines3's loop drive a seqpolicy agent.

SB3 calls ``model.predict(obs, state, episode_start, deterministic)`` and never passes rewards, but a Decision
Transformer lowers its return-to-go by every reward and a Trajectory Transformer plans from past rewards.
This wrapper sits around the VecEnv the agent acts in and, after every ``step``, hands that step's rewards
and dones to the agent (:meth:`ContextAgent.observe`); a ``reset`` of all envs tells the agent to start over.
``predict`` consumes each step's rewards once and raises when a continuing episode's rewards are missing, so
an agent can never act on stale returns-to-go.

Put it directly around the envs' own rewards: beneath any wrapper that rescales rewards (``VecNormalize``
is refused), because returns-to-go are in the env's units.

Example:
    >>> from stable_baselines3.common.env_util import make_vec_env
    >>> from stable_baselines3.common.evaluation import evaluate_policy
    >>> from seqpolicy.agents.reward_feed import RewardFeed
    >>> from seqpolicy.zoo import get_agent
    >>> agent = get_agent("Hopper-v4", "dt")  # doctest: +SKIP
    >>> venv = RewardFeed(make_vec_env("Hopper-v4", n_envs=4, seed=0), agent)  # doctest: +SKIP
    >>> mean, std = evaluate_policy(agent, venv, n_eval_episodes=4)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

try:
    from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper, VecNormalize, is_vecenv_wrapped
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError("RewardFeed wraps Stable-Baselines3 VecEnvs: pip install 'seqpolicy[sb3]'") from e

from seqpolicy.common.envs import check_agent_env_id

__all__ = ["RewardFeed"]


class RewardFeed(VecEnvWrapper):
    """Hands every step's rewards and dones of ``venv`` to ``agent``, for ``agent.predict`` in SB3's loops.

    Args:
        venv: the SB3 VecEnv the agent acts in (``DummyVecEnv``, ``SubprocVecEnv``, ``VecMonitor``...).
        agent: a seqpolicy agent (anything with ``observe(rewards, dones)`` and ``observe_reset()``).
        allow_env_mismatch: let an agent that records another env id or version (``agent.env_id``) act in
            ``venv``'s env anyway (refused by default, as in :func:`seqpolicy.evaluate`).

    Raises:
        ValueError: ``venv`` normalises rewards (``VecNormalize``): returns-to-go need the env's own rewards; or
            the agent was made for another env id or version.
        TypeError: ``agent`` cannot take rewards (it is not a seqpolicy agent).
    """

    def __init__(self, venv: VecEnv, agent: Any, *, allow_env_mismatch: bool = False):
        if is_vecenv_wrapped(venv, VecNormalize):
            raise ValueError("RewardFeed is around a VecNormalize: the agent would see normalised rewards and "
                             "observations, but it was trained on the env's own. Put RewardFeed around the "
                             "envs without VecNormalize.")
        if not (callable(getattr(agent, "observe", None)) and callable(getattr(agent, "observe_reset", None))):
            raise TypeError(f"RewardFeed feeds seqpolicy agents; {type(agent).__name__} has no observe()/"
                            "observe_reset().")
        try:
            spec = venv.get_attr("spec", indices=[0])[0]  # the first env's registered spec (None: made without one)
        except AttributeError:
            spec = None
        check_agent_env_id(agent, getattr(spec, "id", None), allow_env_mismatch=allow_env_mismatch)
        super().__init__(venv)
        self.agent = agent

    def reset(self):
        obs = self.venv.reset()
        self.agent.observe_reset()
        return obs

    def step_wait(self):
        obs, rewards, dones, infos = self.venv.step_wait()
        self.agent.observe(rewards, dones)
        return obs, rewards, dones, infos
