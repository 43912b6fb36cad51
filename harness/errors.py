"""Errors the command line turns into one line and an exit status, never a traceback."""


class HarnessError(Exception):
    """Bad input (registry, command line, data): exit status 2."""

    exit_status = 2


class DataError(HarnessError):
    """A dataset file is missing, truncated or corrupt, or cannot be fetched."""


class RegistryError(HarnessError):
    """An experiment file breaks the registry's schema."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C raises KeyboardInterrupt so that both take the same clean exit."""
