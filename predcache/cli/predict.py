"""``predcache predict PAIR``: one prediction, from the store when fresh."""

from __future__ import annotations

from typing import Any

import typer

from predcache.cli import options
from predcache.cli.app import STATE, app
from predcache.cli.render import iso_utc, paint, print_json
from predcache.config import DEFAULT_HORIZON_S
from predcache.durations import format_duration, format_latency, parse_duration, parse_horizon
from predcache.pairs import parse_pair
from predcache.predictor import Served


def served_to_dict(served: Served) -> dict[str, Any]:
    """The ``--json`` object: a stable schema for scripts."""
    e = served.entry
    out: dict[str, Any] = {
        "pair": e["pair"],
        "horizon_s": e["horizon_s"],
        "predicted_price": e["predicted_price"],
        "last_price": e.get("last_price"),
        "as_of": iso_utc(float(e["as_of"])),
        "created_at": iso_utc(float(e["created_at"])),
        "cache": served.cache,
        "age_s": round(served.age_s, 3),
        "model_version": e["model_version"],
        "compute_ms": e["compute_ms"],
        "latency_ms": round(served.latency_ms, 3),
    }
    if served.detail:
        out["detail"] = served.detail
    return out


def render_line(served: Served) -> str:
    """One compact human line."""
    e = served.entry
    quote = str(e["pair"]).split("/")[1]
    price = paint(f"{float(e['predicted_price']):,.2f} {quote}", "bold")
    cache = paint(served.cache.upper(), served.cache)
    detail = f" ({served.detail})" if served.detail else ""
    return (
        f"{e['pair']} in {format_duration(int(e['horizon_s']))}: "
        f"{price}  "
        f"as of {iso_utc(float(e['as_of']))}  {cache}{detail}  age {served.age_s:.1f}s  "
        f"model {e['model_version']}  {format_latency(served.latency_ms)}"
    )


@app.command()
def predict(
    pair: str = typer.Argument(..., help="Trading pair, e.g. ETH/EUR."),
    horizon: str = typer.Option(
        format_duration(DEFAULT_HORIZON_S),
        "--horizon",
        "-H",
        help="How far ahead: 1m, 5m, 15m, 1h.",
    ),
    ttl: str = options.TTL,
    max_age: str | None = typer.Option(
        None, "--max-age", help="Accept only an entry younger than this (tightens --ttl)."
    ),
    no_cache: bool = typer.Option(False, "--no-cache", help="Neither read nor write the store."),
    refresh: bool = typer.Option(
        False, "--refresh", help="Recompute and store, ignoring a fresh entry."
    ),
    model_delay: str = typer.Option(
        "0", "--model-delay", help="Simulated extra model time on a miss (e.g. 1s, as in the seed)."
    ),
    backend: str | None = options.BACKEND,
    cache_dir: str | None = options.CACHE_DIR,
    models_dir: str | None = options.MODELS_DIR,
    size_limit: str | None = options.SIZE_LIMIT,
    model: str | None = options.MODEL,
    model_version: str | None = options.MODEL_VERSION,
    max_clock_skew: str = options.MAX_CLOCK_SKEW,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of a line."),
) -> None:
    """Predict PAIR's price HORIZON ahead; says HIT/MISS, age and latency."""
    from predcache.factory import build_predictor, select_models

    pair_c = parse_pair(pair)
    horizon_s = parse_horizon(horizon)
    ttl_s = parse_duration(ttl, name="ttl")
    max_age_s = None if max_age is None else parse_duration(max_age, name="max-age")
    delay_s = parse_duration(model_delay, name="model-delay")
    skew_s = parse_duration(max_clock_skew, name="max-clock-skew")
    limit = None
    if size_limit is not None:
        from predcache.sizes import parse_size

        limit = parse_size(size_limit, name="size-limit")
    models = select_models(model, model_version, models_dir)
    models.check_horizon(pair_c, horizon_s)  # before the store exists: bad input writes nothing
    predictor = build_predictor(
        models=models,
        backend=backend,
        cache_dir=cache_dir,
        size_limit=limit,
        ttl_s=ttl_s,
        model_delay_s=delay_s,
        use_store=not no_cache and ttl_s > 0,
        max_clock_skew_s=skew_s,
    )
    try:
        served = predictor.get_or_compute(
            pair_c, horizon_s, max_age_s=max_age_s, refresh=refresh, use_cache=not no_cache
        )
    finally:
        if predictor.store is not None:
            predictor.store.close()
    if as_json:
        print_json(served_to_dict(served))
    else:
        typer.echo(render_line(served))
    STATE["one_shot_done"] = True  # store closed, output written: no teardown needed
