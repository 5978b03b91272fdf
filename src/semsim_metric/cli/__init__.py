"""The ``semsim`` command line: one module per subcommand (``score``, ``report``, ``convert``, ``votes``,
``train``, ``evaluate``, ``generate``, ``annotate``).

Each subcommand module defines ``register(subparsers)`` (arguments only - it imports nothing heavy, so
``semsim --help`` and ``semsim <command> --help`` never import torch) and ``run(args)``, which imports
what it needs and raises ``CLIError`` for problems the user can fix.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib import import_module

from .errors import CLIError

__all__ = ["COMMANDS", "CLIError", "build_parser", "main"]

#: Subcommand modules of this package, in ``--help`` order.
COMMANDS = ("score", "report", "convert", "votes", "train", "evaluate", "generate", "annotate")


def build_parser() -> argparse.ArgumentParser:
    """The ``semsim`` argument parser with all subcommands."""
    from .. import __version__

    parser = argparse.ArgumentParser(prog="semsim",
                                     description="SemSim: human-aligned privacy leakage of reconstructed images.")
    parser.add_argument("--version", action="version", version=f"semsim-metric {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log more detail (debug messages)")
    parser.add_argument("-q", "--log-quiet", action="store_true", help="log warnings only (no step messages)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        import_module(f"{__name__}.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``semsim`` command."""
    args = build_parser().parse_args(argv)
    from .._progress import configure_cli_logging

    configure_cli_logging(-1 if args.log_quiet else min(args.verbose, 1))
    try:
        return int(args.func(args) or 0)
    except CLIError as err:
        print(f"semsim {args.command}: error: {err}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as err:
        from .._deps import MissingExtraError

        if isinstance(err, MissingExtraError):
            print(f"semsim {args.command}: error: {err}", file=sys.stderr)
            return 2
        raise
    except Exception as err:
        from ..errors import SemSimError

        if isinstance(err, SemSimError):
            print(f"semsim {args.command}: error: {err}", file=sys.stderr)
            return 2
        raise
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
