"""Errors the command line turns into one line and an exit status, never a traceback."""

import difflib
import re
import signal

CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # C0, DEL and C1: what a terminal may act on


class HarnessError(Exception):
    """Bad input (registry, command line, data): exit status 2."""

    exit_status = 2


class DataError(HarnessError):
    """A dataset file is missing, truncated or corrupt, or cannot be fetched."""


class RegistryError(HarnessError):
    """An experiment file breaks the registry's schema."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C raises KeyboardInterrupt so that both take the same clean exit."""


class Interrupted(KeyboardInterrupt):
    """SIGINT (Ctrl-C), raised by the command line's own handler, so that a KeyboardInterrupt that user
    code raises itself is told apart from the user pressing Ctrl-C."""


def is_signal(e: BaseException) -> bool:
    """Whether `e` stops the harness because of a signal (Ctrl-C, SIGTERM), as opposed to an exit or an
    interrupt that some code raised. A plain KeyboardInterrupt counts as Ctrl-C only where Python's own
    handler is in force (the harness used as a library), since that is what raises it there."""
    if isinstance(e, (Terminated, Interrupted)):
        return True
    return isinstance(e, KeyboardInterrupt) and signal.getsignal(signal.SIGINT) is signal.default_int_handler


def did_you_mean(name: str, candidates) -> str:
    """' (did you mean X?)' for the candidate closest to `name`, case aside; '' if none is close."""
    by_lower = {str(c).lower(): c for c in candidates}
    close = difflib.get_close_matches(name.lower(), list(by_lower))
    return f" (did you mean {by_lower[close[0]]!r}?)" if close else ""


def one_line(text: str) -> str:
    """A message as one line, whatever a file name or a results field it quotes holds: line breaks and
    every other control character (a terminal's escape codes) shown as escapes, never sent raw."""
    return CONTROL.sub(lambda m: repr(m.group())[1:-1], text)
