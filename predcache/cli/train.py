"""``predcache train``: fit the toy price model per pair and save versioned artifacts."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from predcache import config
from predcache.cli import options
from predcache.cli.app import app
from predcache.durations import format_duration, parse_minute_horizons
from predcache.errors import BadInputError
from predcache.pairs import DEFAULT_PAIRS, parse_pair, parse_pair_list

if TYPE_CHECKING:
    from predcache.training import TrainResult

DEFAULT_HORIZONS = ",".join(format_duration(h) for h in config.DEFAULT_HORIZONS_S)


@app.command()
def train(
    pairs: str | None = typer.Option(
        None, "--pairs", help=f"Comma-separated pairs. \\[default: {','.join(DEFAULT_PAIRS)}]"
    ),
    horizons: str = typer.Option(
        DEFAULT_HORIZONS, "--horizons", help="Comma-separated horizons, whole minutes."
    ),
    days: int = typer.Option(
        7, "--days", min=1, max=365, help="Days of synthetic history to train on."
    ),
    end: str = typer.Option(
        config.DEFAULT_MARKET_TIME,
        "--end",
        help="End of the synthetic training window, ISO 8601 or epoch seconds (fixed, so the "
        "same command trains the same model version on any day).",
    ),
    replace: bool = typer.Option(
        False,
        "--replace",
        help="Keep only the given horizons; by default a pair's other trained horizons are "
        "kept (trained again on the same data).",
    ),
    data: Path | None = typer.Option(
        None, "--data", help="Train on real candles from this CSV instead (needs --pair)."
    ),
    pair: str | None = typer.Option(None, "--pair", help="The pair the --data CSV holds."),
    seed: int = typer.Option(
        0, "--seed", min=0, help="Synthetic market seed (predict uses the model's seed)."
    ),
    models_dir: str | None = options.MODELS_DIR,
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as one JSON list."),
) -> None:
    """Train the toy price model and print model vs naive MAE per pair and horizon."""
    horizons_s = parse_minute_horizons(horizons)
    if data is not None:
        if pair is None:
            raise BadInputError("--data needs --pair to say which pair the candles are")
        if pairs is not None:
            raise BadInputError("use either --data with --pair, or --pairs, not both")
        targets = [parse_pair(pair)]
        if end != config.DEFAULT_MARKET_TIME:
            raise BadInputError("--end sets the synthetic training window; --data has its own")
    else:
        if pair is not None:
            raise BadInputError("--pair goes with --data; use --pairs for synthetic training")
        targets = parse_pair_list(pairs) if pairs else list(DEFAULT_PAIRS)
    end_minute = _end_minute(end)
    out_dir = config.models_dir(models_dir)

    from predcache.training import train_many

    results = train_many(
        targets,
        horizons_s,
        days=days,
        market_seed=seed,
        data=data,
        models_dir=out_dir,
        end_minute=end_minute,
        replace=replace,
        show_progress=not as_json,
    )
    rows: list[dict[str, Any]] = [r for res in results for r in res.rows()]
    if as_json:
        from predcache.cli.render import print_json

        print_json(rows)
        return
    _render_table(results)


def _end_minute(text: str) -> int:
    """The last minute of the training window (a time inside a minute ends at its start)."""
    from predcache.timestamps import parse_timestamp

    try:
        return int(parse_timestamp(text) // 60)
    except ValueError as exc:
        raise BadInputError(f"bad --end: {exc}") from None


def _render_table(results: list[TrainResult]) -> None:
    """The rich table of model vs naive MAE per pair and horizon, then the saved versions."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="holdout MAE, basis points (lower is better)")
    for col in ("pair", "horizon", "rows", "model", "naive", "improvement"):
        table.add_column(col, justify="left" if col in ("pair", "horizon") else "right")
    for res in results:
        for r in res.rows():
            better = r["improvement_pct"] > 0
            table.add_row(
                r["pair"],
                r["horizon"],
                f"{r['rows']:,}",
                f"{r['mae_model_bps']:.2f}",
                f"{r['mae_naive_bps']:.2f}",
                f"[{'green' if better else 'red'}]{r['improvement_pct']:+.1f}%[/]",
            )
    console = Console()
    console.print(table)
    for res in results:
        console.print(
            f"saved {res.pair} model {res.artifact.version} -> {config.display_path(res.path)} "
            f"({res.seconds:.2f}s)",
            highlight=False,
            soft_wrap=True,
            markup=False,
        )
        if res.kept:
            kept = ", ".join(format_duration(h) for h in res.kept)
            console.print(
                f"  kept its other trained horizons {kept} (--replace drops them)",
                highlight=False,
                soft_wrap=True,
            )
