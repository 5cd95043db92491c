"""Shared pieces of the evaluation CLIs: argument types, one-line errors and warnings."""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Callable, Sequence

# Errors a user can cause (bad ids, paths, options, missing extras): reported in one line, exit status 2.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, TypeError, LookupError, OSError, ImportError,
                                                RuntimeError)


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (``prog: error: ...``) pointing at ``--help``."""

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


def frame_size(text: str) -> tuple[int, int]:
    """``"480x360"`` -> (480, 360)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 480x480, got {text!r}") from None
    if not (16 <= w <= 4096 and 16 <= h <= 4096):
        raise argparse.ArgumentTypeError(f"width and height must be between 16 and 4096, got {text!r}")
    return w, h


def run_cli(prog: str, body: Callable[[], int]) -> int:
    """Run ``body``; user errors become one ``prog: error:`` line and exit status 2, Ctrl-C status 130.

    Set ``SEQPOLICY_DEBUG=1`` to get the full traceback instead.
    """

    def show(message, category, filename, lineno, file=None, line=None):  # one line per warning
        print(f"{prog}: warning: {' '.join(str(message).split())}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.showwarning = show
        warnings.filterwarnings("ignore", message=".*is out of date.*")  # gymnasium's note on Hopper-v4 etc.
        try:
            return body()
        except KeyboardInterrupt:
            print(f"{prog}: interrupted", file=sys.stderr)
            return 130
        except USER_ERRORS as e:
            if os.environ.get("SEQPOLICY_DEBUG"):
                raise  # the full traceback, for bug reports
            print(f"{prog}: error: {' '.join(str(e).split())}", file=sys.stderr)
            return 2


def print_lines(lines: Sequence[str]) -> None:
    for line in lines:
        print(line)
