"""The ``semsim`` command line: one module per subcommand (``score``, ``report``, ``convert``, ``votes``,
``train``, ``evaluate``, ``generate``, ``annotate``).

Each subcommand module defines ``register(subparsers)`` (arguments only - it imports nothing heavy, so
``semsim --help`` and ``semsim <command> --help`` never import torch) and ``run(args)``, which imports
what it needs and raises ``CLIError`` for a bad argument; ``main`` prints any ``SemSimError`` (the package's
one hierarchy of errors a user can fix) as one line, exit code 2, and lets every other exception through.

Warnings raised while a command runs are printed as one line each, ``semsim COMMAND: warning: MESSAGE``, on
stderr (no ``file:line`` of the package, no source line); an out-of-domain warning names the command's own switch
(``--no-domain-check``) instead of the Python argument.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable, Sequence
from importlib import import_module
from typing import TextIO

from ..errors import SemSimError
from .errors import CLIError

__all__ = ["COMMANDS", "DOMAIN_SWITCHES", "CLIError", "build_parser", "format_warning", "main"]

#: Subcommand modules of this package, in ``--help`` order.
COMMANDS = ("score", "report", "convert", "votes", "train", "evaluate", "generate", "annotate")

#: The flag that silences the out-of-domain warning, for each command that has one.
DOMAIN_SWITCHES = {"score": "--no-domain-check", "evaluate": "--no-domain-check"}


def format_warning(command: str, message: Warning | str) -> str:
    """One line for a warning shown by ``semsim COMMAND``.

    An ``OutOfDomainWarning`` is worded with the command's switch (``DOMAIN_SWITCHES``); a command without one
    leaves the sentence about silencing out (the Python argument ``check_domain=False`` means nothing there).

    Examples:
        >>> format_warning("train", UserWarning("only 3 rows  in the test split"))
        'semsim train: warning: only 3 rows in the test split'
    """
    text = str(message)
    problem = getattr(message, "problem", None)
    if problem and type(message).__name__ == "OutOfDomainWarning":
        from ..domain import out_of_domain_message

        switch = DOMAIN_SWITCHES.get(command)
        text = (
            out_of_domain_message(problem, switch)
            if switch
            else out_of_domain_message(problem).rsplit(" Silence", 1)[0]
        )
    return f"semsim {command}: warning: {' '.join(text.split())}"


def _show_warnings_as_lines(command: str) -> Callable[..., None]:
    def show(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        print(format_warning(command, message), file=sys.stderr if file is None else file)

    return show


class _HelpFormatter(argparse.HelpFormatter):
    """Wraps help text at spaces only, so recipe strings such as ``colour:embedding=spatial,...=-1`` stay whole
    (copyable) instead of being cut at a hyphen."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        import textwrap

        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False, break_long_words=False)


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]


def build_parser() -> argparse.ArgumentParser:
    """The ``semsim`` argument parser with all subcommands."""
    from .. import __version__

    parser = _Parser(
        prog="semsim", description="SemSim: human-aligned privacy leakage of reconstructed images."
    )
    parser.add_argument("--version", action="version", version=f"semsim-metric {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log more detail (debug messages)")
    parser.add_argument("-q", "--log-quiet", action="store_true", help="log warnings only (no step messages)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        import_module(f"{__name__}.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``semsim`` command.

    Intra-op threads are chosen once, before the command runs (``_threads.configure_threads``: the CPUs the
    process may use divided by the local workers; an explicit ``SEMSIM_NUM_THREADS`` / ``OMP_NUM_THREADS`` wins).
    """
    args = build_parser().parse_args(argv)
    from .._progress import configure_cli_logging
    from .._threads import configure_threads

    configure_cli_logging(-1 if args.log_quiet else min(args.verbose, 1))
    try:
        configure_threads()
        with warnings.catch_warnings():  # restores the caller's filters and showwarning afterwards
            warnings.showwarning = _show_warnings_as_lines(args.command)
            return int(args.func(args) or 0)
    except (
        SemSimError
    ) as err:  # a problem the user can fix (CLIError, MissingExtraError, ...); anything else is a bug
        print(f"semsim {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
