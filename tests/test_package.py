"""The package imports quickly and lightly, and exposes its public names lazily."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("stable_baselines3", "minari", "matplotlib", "imageio", "h5py", "transformers")


def test_import_is_light():
    code = f"import sys, seqpolicy; heavy = {HEAVY!r}; print(','.join(m for m in heavy if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"import seqpolicy pulled in: {out}"


def test_public_names_resolve_without_optional_packages():
    code = ("import sys, seqpolicy; seqpolicy.DecisionTransformerAgent; seqpolicy.train_dt; seqpolicy.evaluate; "
            f"heavy = {HEAVY!r}; print(','.join(m for m in heavy if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"the DT agent, trainer or evaluate() pulled in: {out}"


def test_every_public_name_imports():
    import importlib.util

    import seqpolicy

    assert seqpolicy.__all__ == list(seqpolicy._LAZY)
    has_sb3 = importlib.util.find_spec("stable_baselines3") is not None
    for name, module in seqpolicy._LAZY.items():
        if name in ("SB3Agent", "RewardFeed") and not has_sb3:  # need the sb3 extra at attribute access
            continue
        value = getattr(seqpolicy, name)
        assert value.__module__.startswith(module), f"{name} is defined in {value.__module__}, not {module}"
        assert name in dir(seqpolicy)


def test_type_checking_imports_mirror_the_lazy_table():
    """The TYPE_CHECKING block of seqpolicy/__init__.py names each public name from the module _LAZY gives."""
    import ast
    from pathlib import Path

    import seqpolicy

    tree = ast.parse(Path(seqpolicy.__file__).read_text())
    block = next(node for node in tree.body if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING")
    imported = {alias.name: node.module for node in block.body if isinstance(node, ast.ImportFrom)
                for alias in node.names}
    assert imported == seqpolicy._LAZY


def test_version_is_read_from_the_bottom_layer():
    import seqpolicy
    from seqpolicy.common.artifact import package_versions
    from seqpolicy.common.version import __version__

    assert seqpolicy.__version__ == __version__ == package_versions()["seqpolicy"]


def test_unknown_attribute_is_an_attribute_error():
    import pytest

    import seqpolicy

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        seqpolicy.nope  # noqa: B018


def test_toy_env_passes_gymnasium_env_checker():
    import gymnasium as gym
    from gymnasium.utils.env_checker import check_env

    env = gym.make("seqpolicy/PointReach-v0")
    # PointReach's action Box is [-2, 2] on purpose (agents must rescale actions); the checker's advice is expected
    with pytest.warns(UserWarning, match="symmetric and normalized space"):
        check_env(env.unwrapped, skip_render_check=False)
    assert env.spec.max_episode_steps == 50


# The import layers of ARCHITECTURE.md's file list: a module imports only from layers listed before its own.
LAYERS = ["common", "models", "data", "toy", "agents", "wrappers", "evaluation", "collect", "training", "prediction",
          "zoo", "cli"]


def test_no_module_imports_from_a_higher_layer():
    import ast
    from pathlib import Path

    import seqpolicy

    root = Path(seqpolicy.__file__).parent
    rank = {name: i for i, name in enumerate(LAYERS)}
    upward = []
    for path in root.rglob("*.py"):
        own = path.relative_to(root).with_suffix("").parts[0]
        if own not in rank:
            assert own == "__init__", f"{path}: add its layer to LAYERS (and ARCHITECTURE.md)"
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([node.module] if isinstance(node, ast.ImportFrom) and node.module
                     else [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            for name in names:
                parts = name.split(".")
                if parts == ["seqpolicy"]:  # the package root sits above every layer (it imports them lazily)
                    upward.append(f"{path.relative_to(root)} ({own}) imports the package root")
                elif parts[0] == "seqpolicy" and len(parts) > 1 and rank.get(parts[1], -1) > rank[own]:
                    upward.append(f"{path.relative_to(root)} ({own}) imports {name}")
    assert not upward, "\n".join(upward)
