"""The Online Decision Transformer's stochastic policy (Zheng, Zhang, Grover 2022, "Online Decision Transformer").

The network is the Decision Transformer (``seqpolicy.models.decision_transformer``) with a second action head:
for each state token it gives a diagonal Gaussian over pre-squash actions ``u`` (mean from the DT's own action
layer, log-std from a new one), and actions are ``tanh(u)``, in [-1, 1]. The DT's ``tanh(mean)`` head is kept
as it is, so ``forward`` and ``last_action`` return the policy's mean action (what it acts with by default) and a
saved folder is still one that ``transformers.DecisionTransformerModel`` loads: it computes the same mean
actions and ignores the two extra tensors (the log-std head and the temperature).

Training maximises the log-likelihood of the data's actions plus a temperature times the policy's entropy; the
temperature (``log_temperature``, kept with the weights as the authors keep it with their model) is learnt by
its own loss so that the entropy stays near a target, -(action dims). The functions at the end are that maths.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from seqpolicy.models.decision_transformer import DecisionTransformer, DTConfig

LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0
"""The range the log-std head is squashed into (softly, with a tanh, so it keeps a gradient at the ends)."""
ACTION_EPS = 1e-6
"""Data actions are clamped to +-(1 - ACTION_EPS) before atanh: an action at the Box's bound (a clipped expert's)
has no finite pre-squash value."""
_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


class StochasticDecisionTransformer(DecisionTransformer):
    """A DT whose action head is a tanh-squashed diagonal Gaussian.

    Args:
        config: the DT's config; ``action_tanh`` must be True (the mean action is ``tanh(mean)``).
        init_temperature: the entropy temperature to start from (the paper's 0.1); a loaded checkpoint's own
            value replaces it.
    """

    def __init__(self, config: DTConfig, init_temperature: float = 0.1):
        if not config.action_tanh:
            raise ValueError("A stochastic DT squashes its Gaussian with tanh: DTConfig.action_tanh must be True.")
        if not init_temperature > 0:
            raise ValueError(f"init_temperature must be > 0, got {init_temperature}.")
        super().__init__(config)
        self.predict_action_log_std = nn.Linear(config.hidden_size, config.act_dim)
        self._init_weights(self.predict_action_log_std)
        self.log_temperature = nn.Parameter(torch.tensor([math.log(init_temperature)]))  # (1,)

    @property
    def temperature(self) -> torch.Tensor:
        """exp(log_temperature) as a scalar tensor, with its gradient."""
        return self.log_temperature[0].exp()

    def policy_parameters(self) -> list[nn.Parameter]:
        """Every parameter but the temperature (which has its own loss, learning rate and no weight decay)."""
        return [p for name, p in self.named_parameters() if name != "log_temperature"]

    def _gaussian(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, log_std) of the pre-squash Gaussian from state-token hidden states (..., H) -> (..., act_dim)."""
        mean = self.predict_action[0](hidden)  # the DT's action layer, before its tanh
        squashed = torch.tanh(self.predict_action_log_std(hidden))  # (-1, 1)
        return mean, LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (squashed + 1)

    def action_distribution(self, states: torch.Tensor, actions: torch.Tensor, returns_to_go: torch.Tensor,
                            timesteps: torch.Tensor, attention_mask: torch.Tensor | None = None,
                            ) -> tuple[torch.Tensor, torch.Tensor]:
        """The policy at every step of a window, for training: (mean, log_std), each (B, K, act_dim), of the
        Gaussian over pre-squash actions. Inputs as in :meth:`forward` (and checked the same way)."""
        self._check(states, actions, returns_to_go, timesteps, attention_mask)
        b, k = states.shape[:2]
        x = self._encode(states, actions, returns_to_go, timesteps, attention_mask)
        return self._gaussian(x.reshape(b, k, 3, -1)[:, :, 1])  # (B, 3K, H) -> state tokens (B, K, H)

    def sample_last_action(self, states: torch.Tensor, actions: torch.Tensor, returns_to_go: torch.Tensor,
                           timesteps: torch.Tensor, attention_mask: torch.Tensor | None = None, *,
                           generator: torch.Generator | None = None, noise_scale: float = 1.0) -> torch.Tensor:
        """Like :meth:`last_action`, but a sample ``tanh(mean + noise_scale * std * noise)`` instead of the mean,
        (B, act_dim); ``generator`` (on the model's device) draws the noise. ``noise_scale`` 1 samples the policy
        itself; below 1 it explores closer to the mean (0 is the mean action)."""
        mean, log_std = self._gaussian(self.last_hidden(states, actions, returns_to_go, timesteps, attention_mask))
        noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        std = log_std.exp() if noise_scale == 1.0 else noise_scale * log_std.exp()
        return torch.tanh(mean + std * noise)


def squashed_log_prob(mean: torch.Tensor, log_std: torch.Tensor, actions: torch.Tensor,
                      beta: float = 0.0, action_eps: float = ACTION_EPS) -> torch.Tensor:
    """Log-density of ``actions`` in [-1, 1] under tanh(N(mean, exp(log_std)^2)), summed over the last dim.

    Shapes (..., act_dim) -> (...). Actions are clamped to +-(1 - action_eps) first (see ACTION_EPS).

    ``beta`` > 0 weights each dimension's term by std^(2 beta), the std held fixed (beta-NLL, Seitzer et al.
    2022): the same maximum, but a nearly deterministic state no longer outweighs the rest by 1 / std^2. With
    beta 0 (the paper) a learned std can shrink to its floor on the many near-zero actions of a policy that has
    reached its goal and pin the mean there (PointReach's expert data: the mean action stays ~0).
    """
    a = actions.clamp(-1 + action_eps, 1 - action_eps)
    z = (torch.atanh(a) - mean) / log_std.exp()
    log_prob = -0.5 * z**2 - log_std - _LOG_SQRT_2PI - torch.log1p(-a * a)  # change of variables: da/du = 1 - a^2
    if beta:
        log_prob = log_prob * (2 * beta * log_std).detach().exp()
    return log_prob.sum(-1)


def squashed_entropy(mean: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """A one-sample estimate of the squashed Gaussian's entropy, -log p(tanh(u)) with u drawn by
    reparameterisation (so it has a gradient), (..., act_dim) -> (...). The squashed distribution has no closed
    form; the paper estimates it by sampling too. Draws from torch's global generator."""
    std = log_std.exp()
    noise = torch.randn_like(mean)
    u = mean + std * noise
    gaussian = -0.5 * noise**2 - log_std - _LOG_SQRT_2PI
    log_det = 2 * (math.log(2) - u - F.softplus(-2 * u))  # log(1 - tanh(u)^2), stable for large |u|
    return -(gaussian - log_det).sum(-1)


def temperature_loss(log_temperature: torch.Tensor, entropy: torch.Tensor, target_entropy: float) -> torch.Tensor:
    """The temperature's own loss, ``temperature * (entropy - target)`` with the entropy held fixed: its
    gradient raises the temperature while the policy's entropy is below the target and lowers it above."""
    return (log_temperature.exp() * (entropy.detach() - target_entropy)).sum()
