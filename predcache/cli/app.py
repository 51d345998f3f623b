"""The Typer app object and the global options; command modules register on it."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="predcache",
    help=(
        "Cache ML predictions with an expiry, and measure what the cache buys and costs.\n\n"
        "predict answers from a local store; bench measures hit ratio, latency and the accuracy "
        "cost of stale predictions; serve puts an HTTP API in front of the model."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

cache_app = typer.Typer(help="Inspect or empty the prediction store.", no_args_is_help=True)
app.add_typer(cache_app, name="cache")

STATE = {"debug": False}


@app.callback()
def _global(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
) -> None:
    STATE["debug"] = debug
