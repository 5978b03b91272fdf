"""Summarise a mutmut run: kill rate per module, over all mutants and over the mutants that change behaviour.

    python scripts/mutation_summary.py [--show-survivors] [--module PREFIX]   (where `mutmut run` ran; `make mutation`)

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
import re
import subprocess
import sys
from collections import Counter, defaultdict

#: string literals (with prefixes), triple-quoted first
_STRING = re.compile(
    r"""[rRbBuUfF]{0,2}(?:\"\"\"[\s\S]*?\"\"\"|'''[\s\S]*?'''|"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*')"""
)
#: mutmut's statuses that count as detected
_KILLED = {"killed", "timeout"}
_BEHAVIOUR_SURVIVED = {"survived", "no tests"}


def _mutmut(*args: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "mutmut", *args], capture_output=True, text=True, check=True
    ).stdout


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
    args = parser.parse_args()
    by_module: dict[str, Counter] = defaultdict(Counter)
    behaviour_survivors: list[tuple[str, str]] = []
    for line in _mutmut("results", "--all", "true").splitlines():
        if ":" not in line:
            continue
        name, status = (part.strip() for part in line.rsplit(":", 1))
        module = name.rsplit(".", 1)[0]
        if not module.startswith(args.module):
            continue
        if status in _KILLED:
            by_module[module]["killed"] += 1
        elif status in _BEHAVIOUR_SURVIVED:
            diff = _mutmut("show", name) if status == "survived" else ""
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
