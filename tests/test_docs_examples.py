"""Every command example in the README and docs/ still parses: the command and its flags exist.

Docs drift quietly when an option is renamed; this reads each ``predcache ...`` line in a fenced
code block (and each inline code span that starts with ``predcache ``), resolves its command
through the real Typer app and checks every ``--flag`` against that command's options. Values
are not validated (examples may use placeholders such as ``URL``)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import typer.main

from predcache.cli import app

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_INLINE = re.compile(r"`(predcache [^`]+)`")


def examples(page: Path) -> list[tuple[int, str]]:
    """(line number, command) for each example on ``page``."""
    found: list[tuple[int, str]] = []
    fenced = False
    for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if fenced:
            text = line.strip().removeprefix("$ ")
            for part in re.split(r"\s(?:\||&&|;)\s", text):
                part = part.strip()
                words = part.split()
                if words[:1] != ["predcache"]:
                    continue
                if len(words) > 1 and words[1][-1] in ":,":  # output: "predcache serve: ..."
                    continue
                found.append((number, part))
        else:
            found.extend((number, m) for m in _INLINE.findall(line))
    return found


def unknown_flags(command_line: str) -> list[str]:
    """The problems of one example: an unknown command or an option its command lacks."""
    try:
        words = shlex.split(command_line, comments=True)[1:]
    except ValueError:  # an unbalanced quote in prose: not a runnable example
        return []
    if any(w.startswith("[") or "..." in w for w in words):  # a synopsis, not an example
        words = [w for w in words if not (w.startswith("[") or w.endswith("]") or "..." in w)]
    group = typer.main.get_command(app)
    ctx = group.make_context("predcache", [], resilient_parsing=True)
    command = group
    problems: list[str] = []
    rest = list(words)
    while rest and hasattr(command, "get_command"):
        word = rest[0].split("|")[0]  # a synopsis "stats|clear": its first alternative
        if word.startswith("-"):
            if word.split("=")[0] not in _options(command):
                break
            rest.pop(0)
            continue
        sub = command.get_command(ctx, word)
        if sub is None:
            return [f"unknown command {word!r}"]
        command = sub
        rest.pop(0)
    known = _options(command)
    for word in rest:
        if word.startswith("--") and word.split("=")[0] not in known:
            problems.append(f"{command.name} has no option {word.split('=')[0]}")
    return problems


def _options(command: object) -> set[str]:
    params = getattr(command, "params", [])
    return {o for p in params for o in (*p.opts, *p.secondary_opts)} | {"--help"}


CASES = [(page, number, cmd) for page in PAGES for number, cmd in examples(page)]


def test_the_docs_have_examples() -> None:
    assert len(CASES) >= 30
    assert {page.name for page, _, _ in CASES} >= {"README.md", "bench.md", "serving.md"}


@pytest.mark.parametrize(
    ("page", "number", "command"),
    CASES,
    ids=[f"{p.name}:{n}" for p, n, _ in CASES],
)
def test_example_parses(page: Path, number: int, command: str) -> None:
    assert unknown_flags(command) == [], f"{page.name}:{number}: {command}"


def test_a_renamed_flag_is_caught() -> None:
    assert unknown_flags("predcache bench --ttl 90 --requests 10") == []
    assert unknown_flags("predcache bench --tll 90") == ["bench has no option --tll"]
    assert unknown_flags("predcache cache purgeall") == ["unknown command 'purgeall'"]
    assert unknown_flags("predcache --debug predict ETH/EUR --horizon 5m") == []
