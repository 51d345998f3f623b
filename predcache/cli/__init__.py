"""The ``predcache`` command line.

Commands are thin: parse and validate, call a function that returns data, render. This module
is the one place where errors become exit codes (see :mod:`predcache.errors`): 0 success, 2 bad
usage or input, 1 any other failure, each as one line on stderr (``--debug`` adds the traceback).
Heavy modules (numpy, pandas, fastapi, matplotlib) are imported inside the commands that need
them, so ``predcache predict`` on a cache hit stays fast.
"""

from __future__ import annotations

import os
import sys
import traceback

import click

from predcache.cli import cache as _cache  # noqa: F401  (registers commands)
from predcache.cli import predict as _predict  # noqa: F401
from predcache.cli import train as _train  # noqa: F401
from predcache.cli.app import STATE, app
from predcache.errors import EXIT_BAD_INPUT, EXIT_FAILURE, PredcacheError

__all__ = ["app", "main"]


def _fail(message: str, code: int) -> int:
    print(f"predcache: error: {message}", file=sys.stderr)
    return code


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code instead of exiting."""
    debug_env = os.environ.get("PREDCACHE_DEBUG") == "1"
    try:
        result = app(args=argv, prog_name="predcache", standalone_mode=False)
        return result if isinstance(result, int) else 0
    except PredcacheError as exc:
        if STATE["debug"] or debug_env:
            traceback.print_exc()
        return _fail(str(exc), exc.exit_code)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.UsageError as exc:
        ctx = exc.ctx
        where = ctx.command_path if ctx is not None else "predcache"
        return _fail(f"{exc.format_message()} (see `{where} --help`)", EXIT_BAD_INPUT)
    except click.ClickException as exc:
        return _fail(exc.format_message(), EXIT_BAD_INPUT)
    except click.Abort:
        return _fail("aborted", 130)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except Exception as exc:
        if STATE["debug"] or debug_env:
            traceback.print_exc()
        return _fail(
            f"internal error: {exc.__class__.__name__}: {exc} (run with --debug for details)",
            EXIT_FAILURE,
        )


def main() -> None:
    """Console-script entry point."""
    sys.exit(run())
