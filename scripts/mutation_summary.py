"""Summarise a mutmut run: kill rate per module, over all mutants and over the mutants that change behaviour.

    python scripts/mutation_summary.py [--show-survivors] [--module PREFIX] [--only PATTERN]
    (where `mutmut run` ran: `make mutation`; `--only '*__mutmut_*5'` after `make mutation MUTANTS='*__mutmut_*5'`)

Prints a Markdown table: per module the mutants, killed (a test failed, or timed out), survivors that change only a
string (an error message, a warning, a docstring: the tests match a message's key words, not its wording),
survivors that change behaviour (any other change, including untested code: mutmut's "no tests"), others
(skipped, suspicious, not checked), the kill rate over all mutants, and the kill rate over the mutants that change
behaviour (killed / (killed + behaviour survivors); issue 21's target: >= 90%). With ``--show-survivors`` it then
prints the diff of every behaviour survivor (``mutmut show <name>``), for writing the tests that kill them.

A survivor counts as "string only" when its diff's removed and added lines are equal once every string literal in
them is replaced by the same placeholder.
"""

from __future__ import annotations

import argparse
import fnmatch
import re
from collections import Counter, defaultdict
from pathlib import Path

#: string literals (with prefixes), triple-quoted first
_STRING = re.compile(
    r"""[rRbBuUfF]{0,2}(?:\"\"\"[\s\S]*?\"\"\"|'''[\s\S]*?'''|"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*')"""
)
#: mutmut's statuses that count as detected
_KILLED = {"killed", "timeout"}
_BEHAVIOUR_SURVIVED = {"survived", "no tests"}


def mutant_results() -> list[tuple[str, str, Path]]:
    """(mutant name, mutmut status, source path) of every mutant of the last run, read as ``mutmut results`` does."""
    import mutmut.__main__ as mutmut_cli

    results = []
    for path in mutmut_cli.walk_mutatable_files():
        data = mutmut_cli.SourceFileMutationData(path=path)
        data.load()
        for name, exit_code in data.exit_code_by_key.items():
            results.append((name, mutmut_cli.status_by_exit_code[exit_code], Path(path)))
    return results


def mutant_diff(name: str, path: Path) -> str:
    """The unified diff of a mutant against the original function (what ``mutmut show`` prints)."""
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    return get_diff_for_mutant(name, path=path)


def changes_only_strings(diff: str) -> bool:
    """Whether a mutant's unified diff changes nothing but string literals.

    Examples:
        >>> changes_only_strings('-    raise E("bad value")\\n+    raise E("XXbad valueXX")')
        True
        >>> changes_only_strings('-    if x > 0:\\n+    if x >= 0:')
        False
    """
    removed = [line[1:] for line in diff.splitlines() if line.startswith("-") and not line.startswith("---")]
    added = [line[1:] for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++")]

    def normalised(lines: list[str]) -> str:
        return re.sub(r"\s+", " ", _STRING.sub("S", "\n".join(lines))).strip()

    return bool(removed or added) and normalised(removed) == normalised(added)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--show-survivors", action="store_true")
    parser.add_argument("--module", default="", help="only modules whose name starts with this")
    parser.add_argument(
        "--only",
        default="*",
        help="only mutants whose name matches this fnmatch pattern (a sampled run's MUTANTS)",
    )
    args = parser.parse_args()
    by_module: dict[str, Counter] = defaultdict(Counter)
    behaviour_survivors: list[tuple[str, str]] = []
    for name, status, path in mutant_results():
        module = name.rsplit(".", 1)[0]
        if not module.startswith(args.module) or not fnmatch.fnmatch(name, args.only):
            continue
        if status in _KILLED:
            by_module[module]["killed"] += 1
        elif status in _BEHAVIOUR_SURVIVED:
            diff = mutant_diff(name, path) if status == "survived" else ""
            if diff and changes_only_strings(diff):
                by_module[module]["strings"] += 1
            else:
                by_module[module]["behaviour"] += 1
                behaviour_survivors.append((name, diff))
        else:
            by_module[module]["other"] += 1
    print(
        "| module | mutants | killed | survived: strings only | survived: behaviour | other | kill rate "
        "| kill rate of behaviour-changing mutants |"
    )
    print("|---|---|---|---|---|---|---|---|")
    total: Counter = Counter()
    for module in sorted(by_module):
        total.update(by_module[module])
        print(_row(f"`{module}`", by_module[module]))
    if total:
        print(_row("**all**", total))
    if args.show_survivors:
        for name, diff in behaviour_survivors:
            print(f"\n## {name}\n")
            print(diff or "(no test covers this function)")
    return 0


def _row(label: str, c: Counter) -> str:
    n = sum(c.values())
    detected_or_behaviour = c["killed"] + c["behaviour"]
    behaviour_rate = c["killed"] / detected_or_behaviour if detected_or_behaviour else 1.0
    return (
        f"| {label} | {n} | {c['killed']} | {c['strings']} | {c['behaviour']} | {c['other']} "
        f"| {c['killed'] / n:.1%} | {behaviour_rate:.1%} |"
    )


if __name__ == "__main__":
    raise SystemExit(main())
