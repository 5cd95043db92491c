"""What a trainer reads before it builds a model: the dataset and the env's spaces."""

from __future__ import annotations

from typing import Any

from seqpolicy.toy import resolve_dataset

__all__ = ["env_spaces", "resolve_dataset"]


def env_spaces(data: Any, env_id: str | None) -> tuple[Any, Any, int | None]:
    """The observation space, action space and time limit a trainer builds its agent for.

    With ``env_id`` they come from the env (and the data must fit it); otherwise from the data itself.
    """
    from seqpolicy.common.envs import gym_make

    if env_id is not None:
        env = gym_make(env_id)
        obs_space, act_space = env.observation_space, env.action_space
        time_limit = env.spec.max_episode_steps if env.spec else None
        env.close()
        data.check_env(obs_space, act_space)
        return obs_space, act_space, time_limit
    if data.observation_space is not None and data.action_space is not None:
        return data.observation_space, data.action_space, None
    raise ValueError("Training needs the env's spaces: pass env_id= (--env), or data that records its spaces.")
