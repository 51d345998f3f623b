"""Every command's ``--help`` says every default and environment variable, as written.

typer renders help through rich, which reads ``[...]`` as markup: an unescaped
``[default: 20000]`` vanished and left "per TTL ." behind. These tests render the real help of
every command and check what a reader sees.
"""

from __future__ import annotations

import re

import pytest
import typer

from predcache.cli import app, run
from predcache.cli.app import LAZY_COMMANDS

#: Options whose default is "not given" and mean exactly that (no hidden default to show).
NO_DEFAULT = {
    "--max-age", "--trace", "--label", "--target", "--duration", "--data", "--pair",
    "--plot", "--html", "--error-budget", "--target-hit-ratio", "--json", "--help", "--debug",
    "--version", "--stale-grace",
}  # fmt: skip


def _commands() -> list[tuple[list[str], typer.core.TyperCommand]]:
    """(argv path, click command) for every leaf command, after loading every lazy module."""
    import importlib

    for module in LAZY_COMMANDS.values():
        importlib.import_module(module)
    root = typer.main.get_command(app)
    out: list[tuple[list[str], typer.core.TyperCommand]] = []

    def walk(cmd: object, path: list[str]) -> None:
        subs = getattr(cmd, "commands", None)
        if subs:
            for name, sub in subs.items():
                walk(sub, [*path, name])
        else:
            out.append((path, cmd))  # type: ignore[arg-type]

    walk(root, [])
    return out


def _rendered(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The help as printed, with the panel borders removed and whitespace collapsed."""
    assert run([*argv, "--help"]) == 0
    text = capsys.readouterr().out
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


def _flat(text: str) -> str:
    return " ".join(text.replace("\\[", "[").split())


COMMANDS = _commands()


def test_every_command_is_covered() -> None:
    names = {" ".join(p) for p, _ in COMMANDS}
    assert names == {
        "bench",
        "cache clear",
        "cache purge",
        "cache stats",
        "predict",
        "report",
        "serve",
        "train",
    }


@pytest.mark.parametrize("argv", [[]] + [p for p, _ in COMMANDS], ids=lambda p: " ".join(p))
def test_help_has_no_dropped_brackets(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    shown = _rendered(argv, capsys)
    assert " ." not in shown and " ," not in shown, shown


@pytest.mark.parametrize(
    "argv,cmd", COMMANDS, ids=lambda p: " ".join(p) if isinstance(p, list) else ""
)
def test_every_default_shows(
    argv: list[str], cmd: typer.core.TyperCommand, capsys: pytest.CaptureFixture[str]
) -> None:
    shown = _rendered(argv, capsys)
    for param in cmd.params:
        help_text = getattr(param, "help", None) or ""
        # every bracketed part written in the source reaches the reader intact
        for part in re.findall(r"\\?\[[^\]]*\]", help_text):
            assert _flat(part) in shown, (argv, param.name, part)
        name = param.opts[0]
        if getattr(param, "is_flag", False) or param.required:
            continue  # a flag is off unless given; a required argument has no default
        if param.default is None:
            if name not in NO_DEFAULT:
                assert "[default" in _flat(help_text) or "[env" in _flat(help_text), (
                    f"{' '.join(argv)} {name}: no default shown; say it in the help "
                    "or add it to NO_DEFAULT"
                )
        elif isinstance(param.default, list | tuple):
            continue
        else:
            assert f"[default: {param.default}]" in shown, (argv, name)


def test_hidden_defaults_match_the_code(capsys: pytest.CaptureFixture[str]) -> None:
    """The defaults written into help text are the values the code really uses."""
    from predcache.bench import live_options as live
    from predcache.bench import workload
    from predcache.sizes import parse_size
    from predcache.store.disk import DEFAULT_SIZE_LIMIT

    shown = _rendered(["bench"], capsys)
    assert f"[default: {workload.DEFAULT_REQUESTS}; live mode: {live.DEFAULT_REQUESTS}]" in shown
    assert f"[default: {workload.DEFAULT_RATE:g}]" in shown
    assert f"[default: {workload.DEFAULT_START}]" in shown
    assert f"[default: {live.DEFAULT_CONCURRENCY}]" in shown
    assert f"[default: {live.DEFAULT_BODY_TEMPLATE}]" in shown
    assert "[default: 256MiB]" in shown
    assert parse_size("256MiB") == DEFAULT_SIZE_LIMIT
    assert "[env PREDCACHE_BACKEND; default: disk]" in shown
    assert "--requests <int> Requests per TTL. [default: 20000" in shown
    assert "[default: coalesce]" in shown and "[default: unlimited]" in shown


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from predcache import __version__

    assert run(["--version"]) == 0
    assert capsys.readouterr().out == f"predcache {__version__}\n"
