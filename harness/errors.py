"""Errors the command line turns into one line and an exit status, never a traceback."""

import difflib


class HarnessError(Exception):
    """Bad input (registry, command line, data): exit status 2."""

    exit_status = 2


class DataError(HarnessError):
    """A dataset file is missing, truncated or corrupt, or cannot be fetched."""


class RegistryError(HarnessError):
    """An experiment file breaks the registry's schema."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C raises KeyboardInterrupt so that both take the same clean exit."""


def did_you_mean(name: str, candidates) -> str:
    """' (did you mean X?)' for the candidate closest to `name`, case aside; '' if none is close."""
    by_lower = {str(c).lower(): c for c in candidates}
    close = difflib.get_close_matches(name.lower(), list(by_lower))
    return f" (did you mean {by_lower[close[0]]!r}?)" if close else ""
