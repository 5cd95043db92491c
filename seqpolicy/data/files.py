"""Errors for dataset files that exist but cannot be read: empty, in another format, or damaged.

Every dataset reader (D4RL HDF5, seqpolicy ``.npz``, Minari folders) reports them the same way: a
``ValueError`` naming the file, what is wrong with it and what to do, instead of the bare ``OSError`` or
``BadZipFile`` its format library raises.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

FIX = "Copy or download it again, or write it again."


def check_format(path: Path, kind: str, looks_like: Callable[[Path], bool]) -> None:
    """Refuse ``path`` before reading it when it is empty or ``looks_like(path)`` says it is not a ``kind``.

    Raises:
        ValueError: naming the file and what it is instead.
    """
    if path.stat().st_size == 0:
        raise ValueError(f"Cannot read {path}: the file is empty (0 bytes), not {kind}. {FIX}")
    if not looks_like(path):
        raise ValueError(f"Cannot read {path}: it is not {kind} (its first bytes are not that format's "
                         f"signature). Check the path, or the file's type if it was renamed.")


def damaged(path: Path, kind: str, error: BaseException) -> ValueError:
    """The error for a file that has ``kind``'s signature but fails to read (truncated or corrupt)."""
    return ValueError(f"Cannot read {path}: it is {kind} but damaged or truncated ({error}). {FIX}")
