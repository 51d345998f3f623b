"""The Typer app object and the global options; command modules register on it.

Command modules are imported lazily: ``predcache predict`` imports the predict module only, not
bench, serve, report and train with their imports (see check c of ``benchmarks/perf.py``), and
typer builds the click command for it alone. :class:`LazyGroup` knows each command's module
from :data:`LAZY_COMMANDS` (filled by :func:`register_lazy` in ``predcache.cli``) and imports
it when click resolves that command; listing the commands (``--help``, a typo's suggestions)
imports them all, so help and errors read exactly as with eager imports. A module imported
eagerly still works: whatever is registered on ``app`` is part of the group as usual.
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING

import typer
from typer.core import TyperGroup

if TYPE_CHECKING:  # typer's vendored click (private), for annotations only
    from typer import _click as click

#: command name -> the module whose import registers it on ``app``
LAZY_COMMANDS: dict[str, str] = {}


def register_lazy(commands: dict[str, str]) -> None:
    """Declare where commands live; each module is imported on first use of its command."""
    LAZY_COMMANDS.update(commands)


class LazyGroup(TyperGroup):
    """The top-level click group: imports a command's module only when that command runs."""

    def _load(self, names: list[str]) -> None:
        pending = [LAZY_COMMANDS[n] for n in names if LAZY_COMMANDS[n] not in sys.modules]
        if not pending:
            return
        for module in pending:
            importlib.import_module(module)
        # the modules registered on ``app``: rebuild its commands with typer itself, in
        # registration order (as an eager build would list them)
        self.commands = dict(typer.main.get_group(app).commands)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in LAZY_COMMANDS:
            self._load([cmd_name])
        elif cmd_name not in self.commands:  # a typo: load all, for "Did you mean ...?"
            self._load(list(LAZY_COMMANDS))
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._load(list(LAZY_COMMANDS))
        return super().list_commands(ctx)


app = typer.Typer(
    cls=LazyGroup,
    name="predcache",
    help=(
        "Cache ML predictions with an expiry, and measure what the cache buys and costs.\n\n"
        "predict answers from a local store; bench measures hit ratio, latency and the accuracy "
        "cost of stale predictions; serve puts an HTTP API in front of the model."
    ),
    # no arguments: the callback prints the help (no_args_is_help would raise click's private
    # NoArgsIsHelpError, which predcache would have to recognise by name)
    invoke_without_command=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

cache_app = typer.Typer(help="Inspect or empty the prediction store.")
app.add_typer(cache_app, name="cache")


def _help_when_bare(ctx: typer.Context) -> None:
    """A group called without a command prints its help and succeeds (asking is no error)."""
    if ctx.invoked_subcommand is None:
        text = ctx.get_help()  # rich help prints itself and returns ""
        if text:
            typer.echo(text)
        raise typer.Exit(0)


@cache_app.callback(invoke_without_command=True)
def _cache(ctx: typer.Context) -> None:
    _help_when_bare(ctx)


#: ``debug``: show tracebacks; ``one_shot_done``: the command finished, closed what it opened
#: and wrote its output, so :func:`predcache.cli.main` may skip the interpreter's teardown
STATE = {"debug": False, "one_shot_done": False}


def _print_version(value: bool) -> None:
    if value:
        from predcache import __version__

        typer.echo(f"predcache {__version__}")
        raise typer.Exit(0)


@app.callback()
def _global(
    ctx: typer.Context,
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
    version: bool = typer.Option(
        False,
        "--version",
        is_eager=True,
        callback=_print_version,
        help="Print the version and exit.",
    ),
) -> None:
    STATE["debug"] = debug
    _help_when_bare(ctx)
