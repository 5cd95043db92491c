"""Gymnasium envs by id, in one place: what is wrong with an id is said before any work.

- :func:`check_env_id` refuses an id Gymnasium does not know, in one line with Gymnasium's own "did you mean"
  (or, where Gymnasium has none, the closest registered id).
- :func:`check_agent_env_id` refuses an agent on an env other than the one it records (``agent.env_id``),
  version included: Hopper-v4 and Hopper-v5 share their spaces but not their dynamics, so a v4 agent on v5
  runs and scores something that means nothing.
- :func:`gym_make` is ``gymnasium.make`` with :func:`check_env_id`'s message and without two notices a user
  cannot act on, filtered by their message only: Gymnasium's "The environment Hopper-v4 is out of date" for
  the envs whose v4 the zoo uses on purpose (:data:`CHOSEN_V4`), and MuJoCo's "compiler attribute
  'settotalmass' is deprecated", which Gymnasium's own HalfCheetah model file triggers (MuJoCo prints it and
  appends it to ``MUJOCO_LOG.TXT`` in the working folder at every HalfCheetah env made). Every part of
  seqpolicy that makes an env from its id calls :func:`gym_make`.
"""

from __future__ import annotations

import contextlib
import difflib
import re
import sys
import warnings
from collections.abc import Iterable, Iterator
from typing import Any

import gymnasium
from gymnasium.envs.registration import EnvSpec, find_highest_version, get_env_id, parse_env_id

CHOSEN_V4 = frozenset({"Hopper-v4", "HalfCheetah-v4", "Walker2d-v4"})
"""Env ids the zoo runs although Gymnasium has a newer version: its datasets, agents and D4RL comparisons
were made on them (``envs/<EnvId>/``). Gymnasium's "out of date" notice is filtered for these only."""

_OUT_OF_DATE = "|".join(re.escape(env_id) for env_id in sorted(CHOSEN_V4))
_OUT_OF_DATE_MESSAGE = rf".*The environment ({_OUT_OF_DATE}) is out of date"  # Gymnasium's words (1.x)
_SETTOTALMASS = "compiler attribute 'settotalmass' is deprecated"  # MuJoCo 4.0 on Gymnasium's half_cheetah.xml


def check_env_id(env_id: str, also: Iterable[str] = ()) -> EnvSpec:
    """The registered spec ``env_id`` names (the newest version for an id without one, as ``gymnasium.make``).

    Args:
        env_id: ``[module:][namespace/]name[-vN]``, as ``gymnasium.make`` takes it.
        also: more ids to suggest from when Gymnasium has no suggestion (e.g. the zoo's env folders).

    Raises:
        ValueError: the id is unknown (or its module does not import); the message quotes Gymnasium's "did you
            mean" or names the closest known id, on one line.

    Example:
        >>> check_env_id("Hopper-v4").entry_point
        'gymnasium.envs.mujoco.hopper_v4:HopperEnv'
    """
    spec, reason = _find_spec(env_id, also)
    if spec is None:
        raise ValueError(f"Unknown env id {env_id!r}: {reason}")
    return spec


def _find_spec(env_id: str, also: Iterable[str] = ()) -> tuple[EnvSpec | None, str]:
    """(the spec, "") for a known id, else (None, why not, with a suggestion where there is one)."""
    if not isinstance(env_id, str) or not env_id:
        return None, f"an env id is a non-empty string such as 'Hopper-v4', got {env_id!r}."
    module, name = env_id.split(":", 1) if ":" in env_id else (None, env_id)
    if module:  # gymnasium.make's "module:EnvId": the module registers the env when imported
        import importlib

        try:
            importlib.import_module(module)
        except ImportError as e:
            return None, f"cannot import {module!r}, which should register it ({e}). Install its package."
    spec = gymnasium.registry.get(name)
    if spec is not None:
        return spec, ""
    reason, suggest = f"No registered env with id {name}.", True
    try:
        ns, base, version = parse_env_id(name)
        if version is None and (latest := find_highest_version(ns, base)) is not None:
            return gymnasium.registry[get_env_id(ns, base, latest)], ""  # as gymnasium.make: the newest version
        gymnasium.spec(name)  # raises Gymnasium's own message, with its "did you mean" where it has one
    except gymnasium.error.Error as e:
        reason = " ".join(str(e).split())
        # a wrong version: Gymnasium lists the versions there are, which says more than a close id
        suggest = not isinstance(e, (gymnasium.error.VersionNotFound, gymnasium.error.DeprecatedEnv))
    if suggest and "did you mean" not in reason.lower():
        known = list(gymnasium.registry) + [i for i in also if i not in gymnasium.registry]
        close = difflib.get_close_matches(name, known, n=1)
        reason += (f" Did you mean: `{close[0]}`?" if close else " gymnasium.pprint_registry() lists the "
                   "registered ids; an env of another package needs the id 'package:EnvId'.")
    return None, reason


def same_env_id(a: str, b: str) -> bool:
    """Whether two ids name the same env and version (an id without a version matches any version)."""
    a, b = a.rsplit(":", 1)[-1], b.rsplit(":", 1)[-1]  # "module:EnvId" names EnvId
    if a == b:
        return True
    try:
        (ns_a, name_a, v_a), (ns_b, name_b, v_b) = parse_env_id(a), parse_env_id(b)
    except gymnasium.error.Error:
        return False
    return (ns_a, name_a) == (ns_b, name_b) and (v_a is None or v_b is None or v_a == v_b)


def check_agent_env_id(agent: Any, env_id: str | None, *, allow_env_mismatch: bool = False) -> None:
    """Refuse ``agent`` on ``env_id`` when the agent records another env id or version (``agent.env_id``).

    Agents that record no env id (built in code, SB3 zips) and envs that have no registered id (``env_id``
    None) are not checked.

    Raises:
        ValueError: the ids differ and ``allow_env_mismatch`` is False; the message says how to run it anyway.
    """
    made_for = getattr(agent, "env_id", None)
    if allow_env_mismatch or not isinstance(made_for, str) or not made_for or not env_id:
        return
    if same_env_id(made_for, env_id):
        return
    raise ValueError(f"The agent was made for {made_for}, not {env_id}: another env, or another version whose "
                     "dynamics and rewards differ even where the spaces agree, so its returns would mean nothing. "
                     f"Use {made_for}, or pass allow_env_mismatch=True (--allow-env-mismatch on the command "
                     "line) to run it on purpose.")


@contextlib.contextmanager
def quiet_env_notices() -> Iterator[None]:
    """Within the block, drop the two notices the module docstring names (by message); everything else shows.

    While the block runs, MuJoCo's other warnings become Python RuntimeWarnings (``MuJoCo: ...``) instead of
    being printed; MuJoCo's own handler is put back after. :func:`gym_make` uses it; wrap it around other libraries
    that make envs (Minari) too.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_OUT_OF_DATE_MESSAGE, category=DeprecationWarning)
        mujoco = sys.modules.get("mujoco")  # loaded by any MuJoCo env made before; nothing to quiet otherwise
        if mujoco is None:
            yield
            return

        def handle(message: str) -> None:
            if _SETTOTALMASS not in message:
                warnings.warn(f"MuJoCo: {message}", RuntimeWarning, stacklevel=2)

        previous = mujoco.get_mju_user_warning()
        mujoco.set_mju_user_warning(handle)
        try:
            yield
        finally:
            mujoco.set_mju_user_warning(previous)


def gym_make(env_id: str, **kwargs: Any) -> gymnasium.Env:
    """``gymnasium.make(env_id, **kwargs)``, with an unknown id explained and without the notices above.

    Raises:
        ValueError: the id is unknown (with Gymnasium's "did you mean") or Gymnasium cannot make the env.
    """
    spec, reason = _find_spec(env_id)
    if spec is None:
        raise ValueError(f"Cannot make env {env_id!r}: {reason}")
    if _is_mujoco(spec):
        with contextlib.suppress(ImportError):  # without it gymnasium.make says what to install
            import mujoco  # noqa: F401  (loaded before the env compiles its model: quiet_env_notices needs it)
    with quiet_env_notices():
        try:
            return gymnasium.make(env_id, **kwargs)
        except gymnasium.error.Error as e:
            raise ValueError(f"Cannot make env {env_id!r}: {e}") from e


def _is_mujoco(spec: EnvSpec) -> bool:
    entry = spec.entry_point
    return isinstance(entry, str) and entry.startswith("gymnasium.envs.mujoco")
