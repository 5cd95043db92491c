"""What every CLI shares: a parser with one-line errors, help that fits 100 columns, argument types, output
paths checked before the work starts, and one-line errors and warnings from the library."""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import gymnasium

# Errors a user can cause (bad ids, paths, options, files, missing extras): one line, exit status 2.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, TypeError, LookupError, OSError, ImportError,
                                                RuntimeError, gymnasium.error.Error)
HELP_WIDTH = 100  # help lines stay under this many characters, whatever the terminal width


class HelpFormatter(argparse.HelpFormatter):
    """Help wrapped to the terminal, at most ``HELP_WIDTH`` - 1 characters; a description or epilog written on
    several lines (the examples) is kept as written."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 30,
                 width: int | None = None) -> None:
        width = min(width or shutil.get_terminal_size().columns - 2, HELP_WIDTH - 2)
        super().__init__(prog, indent_increment, max_help_position, width)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text.strip():
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (``prog: error: ...``) pointing at ``--help``; its
    subcommands' parsers are OneLineParsers too."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _int_at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    parse.__name__ = "positive int" if minimum == 1 else f"int >= {minimum}"
    return parse


positive_int = _int_at_least(1)
non_negative_int = _int_at_least(0)


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None
    if not value >= 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def frame_size(text: str) -> tuple[int, int]:
    """``"480x360"`` -> (480, 360)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 480x480, got {text!r}") from None
    if not (16 <= w <= 4096 and 16 <= h <= 4096):
        raise argparse.ArgumentTypeError(f"width and height must be between 16 and 4096, got {text!r}")
    return w, h


def registered_env_id(text: str) -> str:
    """An env id Gymnasium knows (``--env``); an unknown one is refused with Gymnasium's "did you mean" (or the
    closest registered id or zoo env folder)."""
    from seqpolicy.common.envs import check_env_id
    from seqpolicy.zoo import zoo_env_ids

    try:
        check_env_id(text, also=zoo_env_ids())
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


registered_env_id.__name__ = "env id"


def add_env_mismatch_option(parser: argparse.ArgumentParser) -> None:
    """``--allow-env-mismatch``: act on an env other than the one the agent records (refused by default)."""
    parser.add_argument("--allow-env-mismatch", action="store_true",
                        help="run an agent made for another env id or version anyway (refused by default: "
                             "Hopper-v4 and Hopper-v5 share spaces but not dynamics)")


def check_output(path: str | os.PathLike | None, option: str, *, folder: bool = False) -> None:
    """Refuse an output path that cannot be written, before any long work (nothing is created).

    Args:
        path: what the user passed (None: the option was not given; nothing to check).
        option: the option's name for the message, e.g. ``"--json"``.
        folder: the path names a folder (created if missing) rather than a file (written or replaced).

    Raises:
        ValueError: a file where a folder is expected or the reverse, a parent that is a file, or a folder
            this user may not write in; the message names the path and what to do.
    """
    if path is None:
        return
    path = Path(path)
    if folder and path.exists() and not path.is_dir():
        raise ValueError(f"{option} {path} is a file, not a folder: pass a folder (it is created if missing).")
    if not folder and path.is_dir():
        raise ValueError(f"{option} {path} is a folder: pass the path of a file to write.")
    # the folder that must let us write: the output folder itself, else the nearest existing parent
    where = path if folder and path.is_dir() else path.absolute().parent
    while not where.exists():
        where = where.parent
    if not where.is_dir():
        raise ValueError(f"{option} {path} cannot be created: {where} is a file, not a folder. Choose another "
                         "path.")
    if not os.access(where, os.W_OK | os.X_OK):
        raise ValueError(f"{option} {path} cannot be written: no permission to write in {where}. Choose "
                         "another path.")


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread while :func:`run_cli` runs a command.

    A KeyboardInterrupt, so that what cleans up after Ctrl-C (``finally`` blocks, context managers such as
    :class:`~seqpolicy.evaluation.video.VideoWriter`, ``except KeyboardInterrupt``) cleans up after a kill too.
    """

    signum = signal.SIGTERM


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` in the main thread instead of ending the process
    on the spot (which leaves partial files behind and says nothing). A second SIGTERM, e.g. while cleaning
    up, ends the process at once. Outside the main thread (where handlers cannot be set) nothing changes.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum: int, frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the next SIGTERM is not caught
        raise Terminated

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)  # None: set outside Python


def run_cli(prog: str, body: Callable[[], int], on_stop: Callable[[], str | None] | None = None) -> int:
    """Run ``body``; user errors become one ``prog: error:`` line and exit status 2, Ctrl-C status 130 and
    SIGTERM (see :func:`sigterm_as_interrupt`) status 143, each with one line saying so. (A KeyboardInterrupt
    with a ``signum`` attribute, as :class:`Terminated` has, stands for that signal.)

    Args:
        prog: the command's name, first on every line it prints.
        body: the command; returns the exit status.
        on_stop: called after Ctrl-C or SIGTERM stopped ``body`` (its cleanup done); what it returns (e.g.
            which results are kept) ends the line.

    Set ``SEQPOLICY_DEBUG=1`` to get the full traceback instead.
    """

    def show(message, category, filename, lineno, file=None, line=None):  # one line per warning
        print(f"{prog}: warning: {' '.join(str(message).split())}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.showwarning = show
        try:
            with sigterm_as_interrupt():
                return body()
        except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM as Terminated
            signum = int(getattr(e, "signum", signal.SIGINT))
            what = "interrupted" if signum == signal.SIGINT else f"terminated ({signal.Signals(signum).name})"
            note = on_stop() if on_stop is not None else None
            print(f"{prog}: {what}" + (f": {note}" if note else ""), file=sys.stderr)
            return 128 + signum  # the shell's status for a process a signal ended
        except USER_ERRORS as e:
            if os.environ.get("SEQPOLICY_DEBUG"):
                raise  # the full traceback, for bug reports
            text = e.args[0] if isinstance(e, KeyError) and e.args else e  # str(KeyError) quotes its text
            print(f"{prog}: error: {' '.join(str(text).split())}", file=sys.stderr)
            return 2


def add_threads_option(parser: argparse.ArgumentParser) -> None:
    """``--threads N``: intra-op threads for acting (default one, the fastest for small batches and safe beside
    other jobs; see :mod:`seqpolicy.common.threads`)."""
    parser.add_argument("--threads", type=positive_int, default=None, metavar="N",
                        help="torch intra-op threads for acting (default 1: small-batch inference is fastest on one "
                             "thread, and two collapse when another job holds a core); recorded in --json")


def apply_threads(threads: int | None) -> int:
    """Set the process's acting threads from ``--threads`` (None: the default, one); returns the count used."""
    from seqpolicy.common.threads import set_acting_threads

    return set_acting_threads(threads)
