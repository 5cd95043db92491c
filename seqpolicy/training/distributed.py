"""Training on more than one process: ``torchrun`` starts N copies of a trainer, and each trains a
DistributedDataParallel (DDP) copy of the model on its own batches.

- **Joining.** :func:`setup` reads torchrun's environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``) and joins
  the process group: gloo on CPUs, NCCL on GPUs, where each process takes the GPU of its ``LOCAL_RANK``.
  Without torchrun (or with one process) it joins nothing, and every helper here does nothing: the model is
  called as it is, and the run is exactly a single-process run.
- **Batches.** Each rank samples its own batches (its batch generator is seeded ``seed + rank``, and so is its
  dropout); ``batch_size`` is per rank, so a step learns from ``batch_size x world_size`` samples. DDP averages
  the ranks' gradients during the backward pass, so every rank takes the same optimizer step and the weights
  stay identical (init is seeded alike everywhere, and DDP copies rank 0's weights when it wraps the model).
- **Rank 0 writes.** Only rank 0 writes ``log.csv``, checkpoints, ``best/`` and the agent, shows the progress
  bar and runs the periodic evaluations; the others wait at a :meth:`Distributed.barrier` meanwhile.
- **Collectives.** Every rank reaches every collective (the gradient all-reduce, the loss mean at log steps,
  the gather of random states at checkpoints, the barriers) at the same step, since all ranks run the same
  number of steps on the same schedule; that is what keeps them from waiting on each other forever.
- **Leaving.** ``seqpolicy-train`` under torchrun ends its process with :func:`leave_process` once the run is
  written and the group left, skipping Python's interpreter teardown, which gloo can abort (see there).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import NoReturn

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

# How long a rank waits at a collective: the other ranks wait for rank 0's periodic evaluation (a TT's planner can
# take many minutes), longer than torch's default of 10 (NCCL) or 30 (gloo) minutes. If a process dies, torchrun
# stops the others at once.
TIMEOUT = timedelta(hours=2)


@dataclass(frozen=True)
class Distributed:
    """This process's place among torchrun's processes (rank 0 of 1 without torchrun).

    Args:
        rank: this process's rank, 0 to world_size - 1.
        world_size: how many processes train together.
        device: the device this process trains on (under torchrun, ``cuda`` becomes ``cuda:LOCAL_RANK``).
        owns_group: this run joined the process group itself (so :meth:`close` leaves it).
    """

    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")
    owns_group: bool = False

    @property
    def enabled(self) -> bool:
        """More than one process trains together."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """This process is rank 0, the one that writes and evaluates."""
        return self.rank == 0

    def sampling_generator(self, seed: int) -> torch.Generator:
        """This rank's batch generator, seeded ``seed + rank``.

        Under torchrun, torch's global RNG (dropout) is re-seeded ``seed + rank`` too, so the ranks also draw
        different dropout masks; call this after the model is built, so that init is the same on every rank.
        """
        if self.enabled:
            torch.manual_seed(seed + self.rank)
        return torch.Generator(self.device).manual_seed(seed + self.rank)

    def wrap(self, module: torch.nn.Module, call: Callable[..., torch.Tensor] | None = None, *,
             find_unused: bool = False) -> Callable[..., torch.Tensor]:
        """What a training step calls instead of ``call`` (default: ``module`` itself).

        In one process that is ``call`` unchanged; under torchrun, a DDP wrapper that runs ``call`` as its
        forward (DDP only hooks ``forward``, so a method such as the TT's ``loss`` is run through it) and
        all-reduces ``module``'s gradients in the backward pass. ``find_unused``: some parameters get no gradient
        from what ``call`` returns (the DT's state and return heads), which DDP must be told.
        """
        if not self.enabled:
            return module if call is None else call
        return DistributedDataParallel(_AsForward(module, call or module),
                                       device_ids=[self.device.index] if self.device.type == "cuda" else None,
                                       find_unused_parameters=find_unused)

    @staticmethod
    def sync_gradients(wrapped: Callable[..., torch.Tensor], last: bool) -> contextlib.AbstractContextManager:
        """The context of one micro-batch's forward and backward: DDP's ``no_sync()`` on all but the ``last``
        micro-batch of a step, so the gradients are all-reduced once per step (nothing in one process)."""
        if isinstance(wrapped, DistributedDataParallel) and not last:
            return wrapped.no_sync()
        return contextlib.nullcontext()

    def mean(self, value: torch.Tensor) -> torch.Tensor:
        """The mean of ``value`` over the ranks (``value`` itself in one process); every rank must call it."""
        if not self.enabled:
            return value
        total = value.detach().clone()
        dist.all_reduce(total)
        return total / self.world_size

    def max(self, value: int) -> int:
        """The largest of the ranks' ``value`` (``value`` itself in one process); every rank must call it."""
        if not self.enabled:
            return value
        wire = self.device if dist.get_backend() == "nccl" else torch.device("cpu")  # NCCL moves CUDA tensors only
        largest = torch.tensor([value], device=wire)
        dist.all_reduce(largest, op=dist.ReduceOp.MAX)
        return int(largest.item())

    def random_states(self, generator: torch.Generator | None) -> dict[str, torch.Tensor]:
        """The batch-generator and dropout RNG states of ranks 1..N-1, named ``rank{r}.generator_state`` and
        ``rank{r}.torch_rng_state``, for rank 0's checkpoint ({} in one process); every rank must call it."""
        if not self.enabled:
            return {}
        mine = {"torch_rng_state": torch.get_rng_state()}
        if generator is not None:
            mine["generator_state"] = generator.get_state()
        # NCCL moves CUDA tensors only; every rank's state of one kind has the same length.
        wire = self.device if dist.get_backend() == "nccl" else torch.device("cpu")
        states = {}
        for name, state in mine.items():
            parts = [torch.empty_like(state, device=wire) for _ in range(self.world_size)]
            dist.all_gather(parts, state.to(wire))
            states.update({f"rank{r}.{name}": part.cpu() for r, part in enumerate(parts) if r > 0})
        return states

    def barrier(self) -> None:
        """Wait until every rank gets here (nothing in one process)."""
        if self.enabled and self.device.type == "cuda":
            dist.barrier(device_ids=[self.device.index])  # NCCL: on this rank's GPU, not a guessed one
        elif self.enabled:
            dist.barrier()

    def close(self) -> None:
        """Leave the process group if this run joined it."""
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()


class _AsForward(torch.nn.Module):
    """``module`` with ``call`` as its forward, for DDP (which hooks ``forward`` only)."""

    def __init__(self, module: torch.nn.Module, call: Callable[..., torch.Tensor]):
        super().__init__()
        self.module, self.call = module, call

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        return self.call(*args)


def under_torchrun() -> bool:
    """Whether this process is one of several that torchrun started (``WORLD_SIZE`` above 1)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def leave_process(code: int) -> NoReturn:
    """End this process now with exit status ``code``, after flushing its output, without Python's interpreter
    teardown: for a torchrun process whose work is done (files written and closed, the group left).

    A gloo worker thread releases each finished collective's tensors itself, and a tensor that Python has seen
    needs the GIL to be released. When the main thread has begun tearing the interpreter down by then, the worker
    cannot take the GIL and the process aborts ("terminate called without an active exception", SIGABRT) after the
    run has finished: torch 2.13, seen in 3 of 80 two-process CPU trainings (the core dump's worker thread was
    destroying the final barrier's work). Leaving with ``os._exit`` skips the teardown, and nothing of the run
    needs it. Scripts of your own that train under torchrun can end the same way.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def is_main_process() -> bool:
    """Whether this process is rank 0 of torchrun's processes (True without torchrun): the one that reports."""
    return int(os.environ.get("RANK", "0")) == 0


def setup(device: torch.device) -> Distributed:
    """Join torchrun's process group (gloo on CPUs, NCCL on GPUs) and pick this rank's device.

    Without torchrun, or with one process, nothing is joined and ``device`` is kept.

    Raises:
        ValueError: a device that torchrun training cannot use (mps, or a GPU index that every process would
            share); the message says which to pass.
    """
    if not under_torchrun() and not dist.is_initialized():
        return Distributed(device=device)
    if device.type == "cuda":
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if device.index is not None and int(os.environ.get("LOCAL_WORLD_SIZE", "1")) > 1:
            raise ValueError(f"device={device} under torchrun: every process would train on that one GPU. Pass "
                             "--device cuda (each process takes the GPU of its LOCAL_RANK) and choose the GPUs "
                             "with CUDA_VISIBLE_DEVICES.")
        device = torch.device("cuda", local_rank if device.index is None else device.index)
        torch.cuda.set_device(device)
    elif device.type != "cpu":
        raise ValueError(f"device={device} under torchrun: training on several processes runs on cpu (gloo) or "
                         "cuda (NCCL). Pass --device cpu or --device cuda.")
    owns = not dist.is_initialized()
    if owns:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=TIMEOUT)
    return Distributed(rank=dist.get_rank(), world_size=dist.get_world_size(), device=device, owns_group=owns)
