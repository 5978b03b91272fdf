"""Summarise a mutmut run: kill rate per module and every surviving mutant's diff.

    python scripts/mutation_summary.py [--show-survivors]   (run where `mutmut run` ran; see `make mutation`)

Prints a Markdown table (module, mutants, killed, survived, timeouts/suspicious, kill rate) and, with
``--show-survivors``, the diff of each surviving mutant (`mutmut show <name>`), for review in
docs/reliability.md.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections import Counter, defaultdict


def _mutmut(*args: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "mutmut", *args], capture_output=True, text=True, check=True
    ).stdout


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--show-survivors", action="store_true")
    args = parser.parse_args()
    by_module: dict[str, Counter] = defaultdict(Counter)
    survivors = []
    for line in _mutmut("results", "--all", "true").splitlines():
        if ":" not in line:
            continue
        name, status = (part.strip() for part in line.rsplit(":", 1))
        module = name.rsplit(".", 1)[0]
        by_module[module][status] += 1
        if status == "survived":
            survivors.append(name)
    print("| module | mutants | killed | survived | other | kill rate |")
    print("|---|---|---|---|---|---|")
    total = Counter()
    for module in sorted(by_module):
        c = by_module[module]
        total.update(c)
        n = sum(c.values())
        other = n - c["killed"] - c["survived"]
        print(f"| `{module}` | {n} | {c['killed']} | {c['survived']} | {other} | {c['killed'] / n:.1%} |")
    n = sum(total.values())
    if n:
        print(
            f"| **all** | {n} | {total['killed']} | {total['survived']} | {n - total['killed'] - total['survived']} "
            f"| {total['killed'] / n:.1%} |"
        )
    if args.show_survivors:
        for name in survivors:
            print(f"\n## {name}\n")
            print(_mutmut("show", name))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
