"""The command line: `harness list | new | validate | run | variance | plan | report | bench | compare | check`
(also `python -m harness`), each command a module of `harness/commands/`. Here: the dispatcher, and every
error turned into one line.

Exit status: 0 success, 1 a run or check failed (or compare found a difference), 2 bad input (registry, command line, data).
"""

from __future__ import annotations

import argparse
import errno
import io
import os
import re
import signal
import sys

from . import commands, portable
from .errors import HarnessError, Interrupted, Terminated, is_signal, one_line

SHOWN_RAW = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # control characters, less the line breaks and tabs of a table


class _Parser(argparse.ArgumentParser):
    """argparse, with a bad command line said in one line like every other error (not usage, then the error)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {one_line(message)} (`{self.prog} --help` lists the options)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="harness", description="Re-run small PyTorch training recipes across seeds, devices and engines; "
                     "record every run, report, check and compare.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, module in commands.modules().items():
        p = sub.add_parser(name, help=module.HELP)
        module.add_arguments(p)
        p.set_defaults(func=module.run)
    return parser


def _raise_terminated(signum, frame):
    raise Terminated()


def _raise_interrupted(signum, frame):
    raise Interrupted()


def main(argv: list[str] | None = None) -> int:
    if sys.stdout is None:  # started with stdout closed: the next file opened would take its place
        print("harness: error: standard output is closed; redirect it instead (e.g. >/dev/null)", file=sys.stderr)
        return 2
    if hasattr(sys.stdout, "reconfigure"):  # a terminal or pipe that cannot show a title gets escapes, not a crash
        sys.stdout.reconfigure(errors="backslashreplace")
    stdout, sys.stdout = sys.stdout, _Output(sys.stdout)
    try:
        status = _run(argv)
        sys.stdout.flush()
        return status
    except _OutputFailed as e:
        _to_devnull(stdout)
        if e.errno != errno.EPIPE:  # a closed pipe (`harness list | head -1`) is the reader's choice: no word
            print(f"harness: error: cannot write to standard output ({e.strerror})", file=sys.stderr)
        return 1
    finally:
        sys.stdout = stdout


class _OutputFailed(OSError):
    """Standard output could not be written: its reader is gone, or its device full."""


class _Output:
    """Standard output, with its write errors told apart from those of the files the harness writes."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text: str) -> int:
        text = SHOWN_RAW.sub(lambda m: repr(m.group())[1:-1], text)  # a title or host name's escape codes, never acted on
        try:
            return self._stream.write(text)
        except OSError as e:
            raise _OutputFailed(e.errno, e.strerror) from None

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as e:
            raise _OutputFailed(e.errno, e.strerror) from None

    def __getattr__(self, name):
        return getattr(self._stream, name)


def _to_devnull(stream) -> None:
    """Point a failed stream at /dev/null, so that the interpreter's last flush has nowhere to fail."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):
        pass


def _run(argv: list[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    if getattr(args, "portable", False) and not portable.in_force():
        portable.restart_with_settings(argv)  # ATen and MKL read their settings when torch starts
    # SIGTERM (kill, a scheduler's time limit) takes Ctrl-C's clean way out instead of dying mid-write; both
    # raise the harness's own exceptions, so that an interrupt user code raises itself is not taken for one.
    previous = {}
    for signum, handler in ((signal.SIGTERM, _raise_terminated), (signal.SIGINT, _raise_interrupted)):
        try:
            previous[signum] = signal.signal(signum, handler)
        except ValueError:  # not the main thread: leave signals to whoever owns it
            pass
    try:
        return args.func(args)
    except HarnessError as e:
        print(f"harness: error: {one_line(str(e))}", file=sys.stderr)
        return e.exit_status
    except KeyboardInterrupt as e:
        if not is_signal(e):
            print("harness: error: KeyboardInterrupt raised by code, not by Ctrl-C; nothing was interrupted, "
                  "the command failed", file=sys.stderr)
            return 1
        signum = signal.SIGTERM if isinstance(e, Terminated) else signal.SIGINT
        print(f"harness: interrupted ({signum.name}); finished runs are recorded, `harness run` again resumes",
              file=sys.stderr)
        return 128 + signum
    except SystemExit as e:  # the harness never exits from inside a command: this came from a recipe's code
        print(f"harness: error: the code a recipe names called sys.exit({e.code!r}) outside any run; "
              "the command failed", file=sys.stderr)
        return 1
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)


if __name__ == "__main__":
    sys.exit(main())
