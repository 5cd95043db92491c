"""The stochastic Decision Transformer of the Online DT paper as a Gymnasium agent.

It is the DT agent (``seqpolicy.agents.dt``: the same rolling context, returns-to-go, padding, batching and
artifact) around a :class:`~seqpolicy.models.online_dt.StochasticDecisionTransformer`. It acts with the policy's
mean action unless ``sample`` is set; then each action is drawn from the tanh-squashed Gaussian with the agent's
own generator, which ``reset(seed=...)`` seeds, so a sampled episode can be replayed. Online fine-tuning
(``seqpolicy.training.odt``) explores that way. Kind ``odt``; the folder is also a ``transformers`` DT folder whose
actions are the mean's.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import partial
from typing import Any

import torch

from seqpolicy.agents.dt import DecisionTransformerAgent
from seqpolicy.models.online_dt import StochasticDecisionTransformer


class OnlineDTAgent(DecisionTransformerAgent):
    """A stochastic DT behind ``reset()`` / ``act(obs, reward)`` (arguments as :class:`DecisionTransformerAgent`).

    Args:
        sample: draw actions from the policy instead of taking its mean (exploration). Not saved with the agent:
            like SB3's ``deterministic``, it is how the agent is driven; pass it to :meth:`load` or set it.
        noise_scale: with ``sample``, the policy's std is multiplied by this (1: the policy itself; below 1,
            closer to the mean). Not saved either.

    Example:
        >>> import seqpolicy
        >>> agent = seqpolicy.load_agent("runs/hopper-odt/agent", sample=True)  # doctest: +SKIP
        >>> agent.reset(seed=0)  # doctest: +SKIP
    """

    kind = "odt"
    network_class = StochasticDecisionTransformer
    model: StochasticDecisionTransformer

    def __init__(self, model: StochasticDecisionTransformer, *args: Any, sample: bool = False,
                 noise_scale: float = 1.0, **kwargs: Any):
        if not isinstance(model, StochasticDecisionTransformer):
            raise TypeError(f"OnlineDTAgent needs a StochasticDecisionTransformer, got {type(model).__name__}: a "
                            "deterministic DT has no action distribution to sample; use DecisionTransformerAgent.")
        super().__init__(model, *args, **kwargs)
        if not noise_scale >= 0:
            raise ValueError(f"noise_scale must be >= 0, got {noise_scale}.")
        self.sample = bool(sample)
        self.noise_scale = float(noise_scale)
        self._generator = torch.Generator(self.device).manual_seed(0)

    def _seed(self, seed: int) -> None:
        self._generator.manual_seed(seed)

    def _network(self) -> Callable[..., torch.Tensor]:
        if not self.sample:
            return super()._network()  # the mean action (last_action), or the runtime computing it
        if self.runtime is not None:
            raise RuntimeError("This agent samples its actions (sample=True), which only the PyTorch model does: an "
                               "exported runtime computes the mean action. Set agent.sample = False, or load it "
                               "with runtime='torch'.")
        return partial(self.model.sample_last_action, generator=self._generator, noise_scale=self.noise_scale)

    def explorer(self, target_return: float, noise_scale: float = 1.0) -> OnlineDTAgent:
        """A sampling agent on this agent's network (shared, not copied) that asks for ``target_return``, its
        std scaled by ``noise_scale``: how online fine-tuning explores. It has its own context and generator
        (seed it with ``reset(seed=...)``); like any agent it puts the network in eval mode."""
        return OnlineDTAgent(self.model, self.observation_space, self.action_space, state_mean=self.state_mean,
                             state_std=self.state_std, target_return=target_return, return_scale=self.return_scale,
                             context_length=self.context_length, env_id=self.env_id, dataset_id=self.dataset_id,
                             device=self.device, sample=True, noise_scale=noise_scale)

    @classmethod
    def load(cls, folder: str | os.PathLike, device: str | torch.device = "cpu",
             sample: bool = False) -> OnlineDTAgent:
        """Load an agent written by :meth:`save` (or by ``seqpolicy-train odt`` / ``dt --stochastic true``)."""
        agent = super().load(folder, device=device)
        assert isinstance(agent, OnlineDTAgent)
        agent.sample = bool(sample)
        return agent
