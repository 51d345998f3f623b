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

import typer
from typer.exceptions import TyperException

from predcache.cli.app import STATE, app, register_lazy
from predcache.errors import EXIT_BAD_INPUT, EXIT_FAILURE, PredcacheError

__all__ = ["app", "main"]

# Each command's module, imported only when that command runs (see predcache.cli.app).
register_lazy(
    {
        "bench": "predcache.cli.bench",
        "cache": "predcache.cli.cache",
        "predict": "predcache.cli.predict",
        "report": "predcache.cli.report",
        "serve": "predcache.cli.serve",
        "train": "predcache.cli.train",
    }
)


def _fail(message: str, code: int) -> int:
    print(f"predcache: error: {message}", file=sys.stderr)
    return code


def _usage_error(exc: TyperException) -> int:
    """A Typer/click usage error as one line, exit 2 (click's own code for usage errors)."""
    ctx = getattr(exc, "ctx", None)
    where = getattr(ctx, "command_path", None) or "predcache"
    message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
    code = getattr(exc, "exit_code", EXIT_BAD_INPUT)
    return _fail(f"{message} (see `{where} --help`)", EXIT_BAD_INPUT if code == 2 else code)


#: Options whose value may be left out (``--save-requests`` alone: the default place). Typer
#: has no optional values, so an option given without one is passed on as ``--opt=``.
OPTIONAL_VALUE = ("--save-requests",)


def _optional_values(argv: list[str]) -> list[str]:
    out = []
    for i, arg in enumerate(argv):
        following = argv[i + 1] if i + 1 < len(argv) else None
        if arg in OPTIONAL_VALUE and (following is None or following.startswith("-")):
            arg += "="
        out.append(arg)
    return out


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code instead of exiting."""
    argv = _optional_values(sys.argv[1:] if argv is None else argv)
    debug_env = os.environ.get("PREDCACHE_DEBUG") == "1"
    STATE["one_shot_done"] = False
    try:
        result = app(args=argv, prog_name="predcache", standalone_mode=False)
        return result if isinstance(result, int) else 0
    except PredcacheError as exc:
        if STATE["debug"] or debug_env:
            traceback.print_exc()
        return _fail(str(exc), exc.exit_code)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        return _fail("aborted", 130)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except TyperException as exc:  # Typer's (vendored click's) usage errors derive from it
        return _usage_error(exc)
    except Exception as exc:
        if STATE["debug"] or debug_env:
            traceback.print_exc()
        return _fail(
            f"internal error: {exc.__class__.__name__}: {exc} (run with --debug for details)",
            EXIT_FAILURE,
        )


def main() -> None:
    """Console-script entry point."""
    code = run()
    if STATE["one_shot_done"]:
        _exit_without_teardown(code)
    sys.exit(code)


def _exit_without_teardown(code: int) -> None:
    """End a finished one-shot command without the interpreter's module-by-module teardown.

    Clearing every loaded module at exit is a measurable part of a whole ``predcache predict``
    cache hit (``benchmarks/perf.py`` check c). Only that is skipped: the command has closed its
    store, atexit handlers still run, and the standard streams are flushed. Not used while
    another thread is alive, nor on an interpreter without ``atexit._run_exitfuncs`` (CPython's,
    private): there the ordinary exit runs.
    """
    import atexit
    import threading

    run_exitfuncs = getattr(atexit, "_run_exitfuncs", None)
    if threading.active_count() > 1 or run_exitfuncs is None:
        return
    run_exitfuncs()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:  # a closed pipe: nothing more can be said
        code = code or EXIT_FAILURE
    os._exit(code)
