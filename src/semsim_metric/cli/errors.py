"""The error every ``semsim`` subcommand raises for a problem the user can fix (no traceback, exit 2)."""

__all__ = ["CLIError"]


class CLIError(Exception):
    """An error reported to the user without a traceback (exit code 2)."""
