"""What the evaluation charts share: a matplotlib figure (an ImportError naming the extra when matplotlib is
missing) and writing it as a PNG atomically. matplotlib's object API only: no pyplot state, no GUI backend."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

from seqpolicy.common.artifact import atomic_write_bytes


def new_figure(what: str, figsize: tuple[float, float]) -> Any:
    """A matplotlib ``Figure`` with one axes, returned as ``(fig, ax)``; ``what`` names the chart in the error."""
    try:
        from matplotlib.figure import Figure
    except ImportError as e:
        raise ImportError(f"The {what} needs matplotlib: pip install 'seqpolicy[plot]'.") from e
    fig = Figure(figsize=figsize, dpi=100)
    return fig, fig.add_subplot()


def save_png(fig: Any, path: str | os.PathLike) -> Path:
    """Lay the figure out and write it to ``path`` as a PNG, atomically."""
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)
