"""How many intra-op threads acting uses, and the facts a seeded result depends on.

Acting is small-batch inference: a few rows through 64- to 128-wide layers per call. With more than one
intra-op thread every operation pays OpenMP's fork and join, and when another process holds a core (an
evaluation beside a training) a two-thread team waits at every operation for its descheduled half. Measured
on a 2-core AMD EPYC (``benchmarks/bench_act.py``, benchmarks/README.md "Acting threads"): beside a busy
process the zoo's Hopper DT acts 2.6x to 56x slower on two threads than on one and its TT 3x to 36x; on
a quiet machine two threads gain nothing for the DT and 1.4x for the TT. One thread is also what makes a TT's
sampled plans repeat whatever the load (the thread count sets the matmuls' rounding), so agents act on
**one** thread unless told otherwise, whatever ``torch.get_num_threads()`` says; training keeps its own
``--threads``.

- :func:`set_acting_threads` sets the process-wide default (the command-line tools' ``--threads``).
- An agent's ``threads`` attribute overrides it for that agent (None: the process default).
- :func:`intra_op_threads` applies a count around a block and restores the caller's afterwards.
"""

from __future__ import annotations

import contextlib
import functools
import os
import platform
from collections.abc import Iterator
from pathlib import Path

import torch

ACTING_THREADS = 1
"""Intra-op threads for acting unless set otherwise (see the module docstring for the measurements)."""

_acting_threads = ACTING_THREADS


def set_acting_threads(threads: int | None) -> int:
    """Set the intra-op threads every agent acts with (None: back to :data:`ACTING_THREADS`); returns it.

    Raises:
        ValueError: ``threads`` is not a positive integer.
    """
    global _acting_threads
    _acting_threads = ACTING_THREADS if threads is None else check_threads(threads)
    return _acting_threads


def acting_threads(override: int | None = None) -> int:
    """The thread count acting uses: ``override`` when given (an agent's own), else the process default."""
    return _acting_threads if override is None else override


def check_threads(threads: object, name: str = "threads") -> int:
    """``threads`` as an int >= 1, or a ValueError naming ``name``."""
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"{name} must be a positive integer (intra-op threads), got {threads!r}.")
    return threads


@contextlib.contextmanager
def intra_op_threads(threads: int) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(threads)`` and restore the previous count afterwards.

    Switching costs well under a microsecond, so agents do it around every ``act``.
    """
    before = torch.get_num_threads()
    if before == threads:
        yield
        return
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@functools.cache
def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), or what :mod:`platform` knows."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def matmul_isa() -> str:
    """The fastest matmul instructions torch can use on this CPU: ``amx``, ``avx512_bf16`` or ``other``.

    Float rounding in matmuls follows it, so sampled results (the TT's plans) repeat only within one kind.
    """
    cpu = getattr(torch, "cpu", None)
    for name, check in (("amx", "_is_amx_tile_supported"), ("avx512_bf16", "_is_avx512_bf16_supported")):
        if getattr(cpu, check, lambda: False)():
            return name
    return "other"


def run_conditions(threads: int | None, n_envs: int) -> dict:
    """What a seeded evaluation's result depends on besides the seeds and the agent's files: recorded with
    every result so a rerun can match them.

    A result repeats bit for bit with the same agent files, seeds, ``n_envs`` (the batch composition: an env's
    logits may differ in the last bits when other envs share its batch), ``threads`` (the reduction order of
    matmuls), CPU kind (``matmul_isa``) and package versions. Deterministic agents (DT, BC) usually repeat across
    all of these too; the TT's sampled plans follow the rounding, so its returns do not.
    """
    return {"threads": threads, "n_envs": n_envs, "cpu": cpu_model(), "matmul_isa": matmul_isa(),
            "logical_cpus": os.cpu_count()}
