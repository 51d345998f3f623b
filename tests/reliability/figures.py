"""The figures the reliability suite measures, gathered while it runs and printed at the end.

docs/reliability.md quotes these numbers, so they must come from a run, never from a hand: each
test adds what it actually did (kills survived, operations, bad inputs tried, entries lost)
with :func:`add`, and ``conftest.py`` prints the table after the session (and writes it as
JSON to ``$PREDCACHE_RELIABILITY_FIGURES`` when that is set).
"""

from __future__ import annotations

import json
from pathlib import Path

#: section -> figure -> count, summed over the tests of one session
FIGURES: dict[str, dict[str, int]] = {}


def add(section: str, **counts: int) -> None:
    """Add ``counts`` to ``section`` (sums, so parametrised tests accumulate)."""
    row = FIGURES.setdefault(section, {})
    for name, value in counts.items():
        row[name] = row.get(name, 0) + int(value)


def render() -> list[str]:
    """The figures as a markdown table, one line per figure."""
    lines = ["| area | figure | count |", "| --- | --- | ---: |"]
    for section in sorted(FIGURES):
        for name, value in FIGURES[section].items():
            lines.append(f"| {section} | {name} | {value:,} |")
    return lines


def write(path: Path) -> None:
    """Save the figures as JSON (sorted, so two runs diff cleanly)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(FIGURES, indent=2, sort_keys=True) + "\n", encoding="utf-8")
