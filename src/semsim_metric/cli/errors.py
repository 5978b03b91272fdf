"""The error every ``semsim`` subcommand raises for a bad argument (no traceback, exit 2); it lives, with every
other error the package raises, in ``semsim_metric.errors``."""

from ..errors import CLIError

__all__ = ["CLIError"]
