"""Mutation score of the core, one module at a time: ``python -m tests.mutation MODULE...``.

Runs mutmut 3 (``pip install -e ".[mutation]"``; configured in ``[tool.mutmut]`` of
pyproject.toml: which files are mutated and which fast in-process tests run against them) on
the mutants of each named module, then prints one line per module: mutants, killed, survived,
timeouts, score and wall time. ``MODULE`` is a dotted name (``predcache.keys``); with none, every
module of ``[tool.mutmut] only_mutate`` runs, which takes hours on a small machine.

mutmut keeps its results in ``mutants/`` (git-ignored), so a module already run is only re-run
for mutants whose code or tests changed. ``mutmut show NAME`` prints one mutant's diff;
docs/testing.md lists the survivors and why each is harmless.

Score = killed (by a failing test or a timeout) / (mutants - survivors judged equivalent).
The equivalents are listed in :data:`EQUIVALENT`, each with its reason in docs/testing.md.
"""

from __future__ import annotations

import subprocess
import sys
import time
import tomllib
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

#: survivors that no test can kill because the mutant behaves exactly like the original
#: (the reason for each is in docs/testing.md, "Equivalent mutants")
EQUIVALENT: frozenset[str] = frozenset(
    {
        # `source == "synthetic" or zipf is not None`: every workload the code builds has a
        # zipf exactly when it is synthetic, so `or` and `and` pick the same branch
        "predcache.bench.ttl_model.x_workload_key_rates__mutmut_1",
        # `astype(None)` is numpy's default dtype, float64: the same array
        "predcache.bench.ttl_model.x_workload_key_rates__mutmut_13",
        # `np.asarray(rates)` without float64: integer rates give the same H (numpy's `/` is
        # true division, and `x / (1 + x)` is computed in floats either way)
        "predcache.bench.ttl_model.x_expected_hit_ratio__mutmut_3",
        "predcache.bench.ttl_model.x_expected_hit_ratio__mutmut_5",
        # `ttl_s < 0` instead of `<= 0`: at ttl 0 the formula gives 0.0 too (x = 0)
        "predcache.bench.ttl_model.x_expected_hit_ratio__mutmut_9",
        # ttl_model.expected_outcomes: the same two dtype mutants as above (integer rates give
        # the same shares: every product with a float and every `/` is computed in floats)
        "predcache.bench.ttl_model.x_expected_outcomes__mutmut_3",
        "predcache.bench.ttl_model.x_expected_outcomes__mutmut_5",
        # `else 1.0` for a key of rate 0: `last` is multiplied by that rate, and the key's share
        # of the traffic is 0, so any finite value adds nothing
        "predcache.bench.ttl_model.x_expected_outcomes__mutmut_64",
        # `np.zeros_like(None)`: a scalar 0 broadcasts to the same zero sum as zeros per key
        "predcache.bench.ttl_model.x_expected_outcomes__mutmut_83",
        # durations.format_duration: `seconds / size` for `//` where `seconds % size == 0`: the
        # quotient is a whole number either way (exact in floats), and `int()` takes it
        "predcache.durations.x_format_duration__mutmut_23",
        # `seconds <= 1` for `< 1`: 1 s never gets there (the loop returns "1s" for it)
        "predcache.durations.x_format_duration__mutmut_24",
        # `allow_zero=None` for False: both falsy, `not allow_zero` is True either way
        "predcache.durations.x_parse_horizon__mutmut_4",
        "predcache.durations.x_parse_minute_horizons__mutmut_4",
        # fill.KeyLocks.get: without the lock-free first look (`None`, `.get(None)`) every call
        # takes the guard and `setdefault` returns the key's one lock all the same
        "predcache.fill.xǁKeyLocksǁget__mutmut_1",
        "predcache.fill.xǁKeyLocksǁget__mutmut_2",
        # fill.Filler.fill: `assert store is not None or leases is not None`: the constructor
        # makes the lease keeper exactly when there is a store, so `or` and `and` agree
        "predcache.fill.xǁFillerǁfill__mutmut_1",
        # predictor._bypass_outage: the outage flight's name `"XXbypass:XX" + key` or
        # `"BYPASS:" + key`: still one name per key, and never a key's own (keys start `v1:`)
        "predcache.predictor.xǁPredictorǁ_bypass_outage__mutmut_18",
        "predcache.predictor.xǁPredictorǁ_bypass_outage__mutmut_19",
        # predictor.refresh_if_idle: `and` for `or`, `ttl_s < 0` for `<= 0`: what gets past
        # reaches refresh_key_if_idle, whose own guard returns False for the same cases
        "predcache.predictor.xǁPredictorǁrefresh_if_idle__mutmut_1",
        "predcache.predictor.xǁPredictorǁrefresh_if_idle__mutmut_3",
        # store.memory: `popitem(last=None)` is as falsy as False: the oldest item goes either way
        "predcache.store.memory.xǁMemoryStoreǁset_raw__mutmut_16",
        # entry: `allow_nan=None` is as falsy as False (json refuses NaN either way)
        "predcache.entry.x_encode_entry__mutmut_3",
        # report.recommend: `groupby(..., sort=True)` is pandas' default
        "predcache.report.recommend.x_reaching_hit_ratio__mutmut_22",
        "predcache.report.recommend.x_within_error_budget__mutmut_21",
        # format `F` instead of `f` differs only for inf/nan, which `_f` prints as "-"
        "predcache.report.recommend.x_reaching_hit_ratio__mutmut_39",
        "predcache.report.recommend.x_within_error_budget__mutmut_38",
        "predcache.report.recommend.xǁRecommendationǁline__mutmut_8",
        "predcache.report.recommend.xǁRecommendationǁline__mutmut_14",
        "predcache.report.recommend.xǁRecommendationǁline__mutmut_20",
        # the sort's algorithm only orders ties, and one run never has two rows of one TTL
        "predcache.report.recommend.x__simulated__mutmut_14",
        "predcache.report.recommend.x__simulated__mutmut_16",
        "predcache.report.recommend.x__simulated__mutmut_20",
        # no ttl_s column: `iloc[1:0]` is as empty as `iloc[0:0]`; `iloc[0:1]` and `or True`
        # fail on the missing column exactly where the original does (sort_values, KeyError)
        "predcache.report.recommend.x__simulated__mutmut_11",
        "predcache.report.recommend.x__simulated__mutmut_12",
        "predcache.report.recommend.x__simulated__mutmut_3",
        # bench.accuracy.Counterfactuals.sums: `np.clip(col, None, ...)`: searchsorted never
        # returns an index below 0, so the lower bound never acts
        "predcache.bench.accuracy.xǁCounterfactualsǁsums__mutmut_21",
        # bench.accuracy._grouped: `max + 2` keys as the code's radix: any radix above the largest
        # key index encodes (at, key, column) one to one and decodes with the same radix
        "predcache.bench.accuracy.xǁCounterfactualsǁ_grouped__mutmut_4",
        # bench.accuracy.Scorer: the horizons' dtype dropped: they are only added to float64
        # times, so the sum is the same float64 whatever integer type they have
        "predcache.bench.accuracy.xǁScorerǁ__init____mutmut_4",
        "predcache.bench.accuracy.xǁScorerǁ__init____mutmut_6",
        # Scorer.view: the request minute as float64 (`astype(None)`): whole minutes below 2**53,
        # so searchsorted in the integer minutes finds the same column
        "predcache.bench.accuracy.xǁScorerǁview__mutmut_2",
        # bench.accuracy.scorer: `np.zeros(..., dtype=None)` is numpy's default, float64
        "predcache.bench.accuracy.x_scorer__mutmut_17",
        "predcache.bench.accuracy.x_scorer__mutmut_19",
        # bench.accuracy.plugin_scorer: its one path's grid `None`: a plugged model's fresh
        # prediction is the function itself, and only paths 1.. (none here) read a grid
        "predcache.bench.accuracy.x_plugin_scorer__mutmut_43",
        "predcache.bench.accuracy.x_plugin_scorer__mutmut_56",
        # bench.summary.summarise: the Chunk's `start` (None, 1), `times` (None, zeros(1)) and
        # `key_index` (None): RowStats.add never reads them (it scores through the
        # Counterfactuals); the Counters' `requests` (None): summarise_stats counts its RowStats
        "predcache.bench.summary.x_summarise__mutmut_4",
        "predcache.bench.summary.x_summarise__mutmut_28",
        "predcache.bench.summary.x_summarise__mutmut_5",
        "predcache.bench.summary.x_summarise__mutmut_30",
        "predcache.bench.summary.x_summarise__mutmut_6",
        "predcache.bench.summary.x_summarise__mutmut_38",
        # summarise_stats: `if n or True` for `if n`: with no requests both raise
        # ZeroDivisionError (the original at `hits / n`), with requests both divide
        "predcache.bench.summary.x_summarise_stats__mutmut_11",
        # server.protocol: a str never reaches `_kind` (a string is valid for both fields)
        "predcache.server.protocol.x__kind__mutmut_8",
        "predcache.server.protocol.x__kind__mutmut_9",
        # `strip('XX"XX')`: the header is lower-cased first, so there is no X to strip
        "predcache.server.protocol.x_parse_cache_control__mutmut_23",
        "predcache.server.protocol.x_parse_cache_control__mutmut_27",
        # report.load.check_summary: `astype(None)` is numpy's default dtype, float64
        "predcache.report.load.x_check_summary__mutmut_36",
        # `errstate(invalid=None)` keeps the setting: comparing NaN or inf and `isfinite` never
        # raise, even under `np.seterr(all="raise")` (numpy 2.4)
        "predcache.report.load.x_check_summary__mutmut_63",
        # report.load.load_summaries: one frame through `concat` (`or True`, `>= 1`) is the same
        # rows, columns and dtypes; `ignore_index` off leaves duplicate labels that the final
        # `reset_index(drop=True)` throws away
        "predcache.report.load.x_load_summaries__mutmut_29",
        "predcache.report.load.x_load_summaries__mutmut_31",
        "predcache.report.load.x_load_summaries__mutmut_33",
        "predcache.report.load.x_load_summaries__mutmut_34",
        "predcache.report.load.x_load_summaries__mutmut_35",
        # the sort always has two keys or more (`run_id`, and `mode`, which check_summary adds
        # when missing): pandas then sorts with lexsort, which is stable and ignores `kind`;
        # `na_position="last"` is pandas' default
        "predcache.report.load.x_load_summaries__mutmut_56",
        "predcache.report.load.x_load_summaries__mutmut_59",
        "predcache.report.load.x_load_summaries__mutmut_60",
        "predcache.report.load.x_load_summaries__mutmut_61",
        "predcache.report.load.x_load_summaries__mutmut_62",
        # bench.engine._Run.__init__: the predictor's `cross_process_lock` (None, True, left
        # out) and `model_delay_s` (left out) configure only its serve path (the lease lock and
        # the wait in Filler, the slept delay); the engine calls `read`, `usable`, `compute` and
        # `put` only, and its sleep is a no-op: the delay is the engine's own simulated one
        "predcache.bench.engine.xǁ_Runǁ__init____mutmut_16",
        "predcache.bench.engine.xǁ_Runǁ__init____mutmut_23",
        "predcache.bench.engine.xǁ_Runǁ__init____mutmut_25",
        "predcache.bench.engine.xǁ_Runǁ__init____mutmut_28",
        # the per-key flight state's first values (`flight_end` 1.0, `flight_failed` True,
        # `flight_chain` 1.0): each is read only while `inflight[k]` is non-zero, and `start`
        # sets all three before it makes it so
        "predcache.bench.engine.xǁ_Runǁ__init____mutmut_40",
        "predcache.bench.engine.xǁ_Runǁ__init____mutmut_45",
        "predcache.bench.engine.xǁ_Runǁ__init____mutmut_48",
        # `seq` from 1: it only orders computations that end at the same instant, and the order
        # of any two stays the same
        "predcache.bench.engine.xǁ_Runǁ__init____mutmut_53",
        # `rate >= 0`: at rate 0 the draw `< 0` never fails; the draw comes from the failure
        # die's own stream, which nothing else reads
        "predcache.bench.engine.xǁ_Runǁstart__mutmut_41",
        # `seq += 2`: still increasing, so computations ending together keep their order
        "predcache.bench.engine.xǁ_Runǁstart__mutmut_77",
        # own: a failed request's age `1.0`: replay_chunk overwrites the age of every request
        # served nothing with NaN
        "predcache.bench.engine.xǁ_Runǁown__mutmut_57",
        # server.app._unready_reason: the probe's key (`XX...XX`, upper case): any key answers
        # whether the backend can be read; the entry it returns is never looked at
        "predcache.server.app.x__unready_reason__mutmut_3",
        "predcache.server.app.x__unready_reason__mutmut_4",
        # create_app: `model_fail_rate >= 0` wraps the models at rate 0 too, where the draw
        # `< 0` never fails (one more draw from the unseeded global generator changes no
        # outcome's probability)
        "predcache.server.app.x_create_app__mutmut_42",
        # build_fastapi: `app.state.service = None`: nothing reads `app.state.service`
        "predcache.server.app.x_build_fastapi__mutmut_20",
        # run: `float("INF")` is `float("inf")`
        "predcache.bench.engine.xǁ_Runǁrun__mutmut_20",
        # replay_chunk: `pending[0][1] <= t` (the sequence number, always far below an epoch
        # time) calls finish_until before every request, which writes exactly what ended by `t`
        "predcache.bench.engine.xǁ_Runǁreplay_chunk__mutmut_17",
        # a refresh's origin -2 for -1: only `origin >= 0` is ever asked (no request waits)
        "predcache.bench.engine.xǁ_Runǁreplay_chunk__mutmut_81",
        "predcache.bench.engine.xǁ_Runǁreplay_chunk__mutmut_100",
        # store.disk_reader: the header kept from the last ask starts (and restarts) as "" or
        # None: header() returns 48 bytes or None, and None never matches, so both ask SQLite
        "predcache.store.disk_reader.xǁDiskReaderǁ__init____mutmut_10",
        "predcache.store.disk_reader.xǁDiskReaderǁ_open__mutmut_35",
        "predcache.store.disk_reader.xǁDiskReaderǁ_close__mutmut_4",
        # the first data_version answer (None or 1 for 0) is never returned: the header kept
        # with it is None until SQLite has been asked, which sets the answer
        "predcache.store.disk_reader.xǁDiskReaderǁ__init____mutmut_11",
        "predcache.store.disk_reader.xǁDiskReaderǁ__init____mutmut_12",
        # without isolation_level=None, Python's sqlite3 opens an implicit transaction only
        # before INSERT/UPDATE/DELETE/REPLACE; this connection runs only SELECT and PRAGMA
        "predcache.store.disk_reader.xǁDiskReaderǁ_open__mutmut_12",
        # SQLite's pragma names are case-insensitive ("pragma journal_mode", "JOURNAL_MODE")
        "predcache.store.disk_reader.xǁDiskReaderǁ_open__mutmut_23",
        "predcache.store.disk_reader.xǁDiskReaderǁ_open__mutmut_24",
        # store.wal_index: O_RDONLY & O_CLOEXEC is O_RDONLY (0), and Python opens every file
        # descriptor non-inheritable anyway (PEP 446): the same close-on-exec descriptor
        "predcache.store.wal_index.xǁWalIndexǁopen__mutmut_6",
        # store.disk: SQL keywords and SQLite's table and column names are case-insensitive
        "predcache.store.disk.xǁDiskStoreǁ_rows__mutmut_8",
        "predcache.store.disk.xǁDiskStoreǁ_rows__mutmut_9",
        "predcache.store.disk.xǁDiskStoreǁ_rows__mutmut_16",
        "predcache.store.disk.xǁDiskStoreǁ_rows__mutmut_17",
        # `namespace or True` for the read prefix: without a namespace that is
        # namespaced("", "") == "", the prefix the original uses too
        "predcache.store.disk.xǁDiskStoreǁ__init____mutmut_8",
        # `_db_ino = ""` at start: it is read only while diskcache is open, and opening sets it
        "predcache.store.disk.xǁDiskStoreǁ__init____mutmut_20",
        # `_warned = None` for False: as falsy, the first warning is still said
        "predcache.store.disk.xǁDiskStoreǁ__init____mutmut_23",
        # the watch's `ino = ""` for a missing file: a non-empty set of inodes is a subset of
        # neither {None} nor {""}, and an empty one of both
        "predcache.store.disk.xǁDiskStoreǁ_watch__mutmut_8",
        # get: `self._prefix or True`: without a namespace the prefix is "", and "" + key is key
        "predcache.store.disk.xǁDiskStoreǁget__mutmut_3",
        # store.redis: redis-py's ConnectionPool.disconnect tests `if inuse_connections:`, so
        # None drops only the idle connections, as False does
        "predcache.store.redis.xǁRedisStoreǁ_drop_idle__mutmut_1",
        # `_release`/`_renew` starting as "" for None: `_client()` sets both on first use, and
        # both are read only after a call to `_client()` (`_release_script`, `renew`)
        "predcache.store.redis.xǁRedisStoreǁ__init____mutmut_14",
        "predcache.store.redis.xǁRedisStoreǁ__init____mutmut_15",
        # SCAN's COUNT (500, or Redis's default 10 without it) is a hint of the work per call:
        # a full iteration returns the same keys, only in more round trips
        "predcache.store.redis.xǁRedisStoreǁ_entry_keys__mutmut_7",
        "predcache.store.redis.xǁRedisStoreǁ_entry_keys__mutmut_9",
    }
)

KILLED = {"killed", "timeout", "caught by type check", "segfault"}


def config() -> dict[str, Any]:
    mutmut: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]
    return mutmut


def modules() -> list[str]:
    return [p.removesuffix(".py").replace("/", ".") for p in config()["only_mutate"]]


def run_command(module: str) -> list[str]:
    """``mutmut run`` for one module; ``max_children`` from [tool.mutmut] (mutmut 3.8 reads it
    only from the command line, and its default is one child per core)."""
    children = config().get("max_children")
    flag = [] if children is None else ["--max-children", str(children)]
    return ["mutmut", "run", *flag, f"{module}.*"]


def results() -> dict[str, str]:
    """mutant name -> status, from ``mutmut results --all true``."""
    out = subprocess.run(
        ["mutmut", "results", "--all", "true"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found = {}
    for line in out.splitlines():
        name, sep, status = line.strip().rpartition(": ")
        if sep and name.startswith("predcache."):
            found[name] = status
    return found


def score_line(module: str, statuses: dict[str, str], seconds: float | None) -> str:
    mine = {n: s for n, s in statuses.items() if n.rsplit(".", 1)[0] == module}
    counts = Counter(mine.values())
    killed = sum(counts[s] for s in KILLED)
    survivors = [n for n, s in mine.items() if s not in KILLED]
    equivalent = [n for n in survivors if n in EQUIVALENT]
    judged = len(mine) - len(equivalent)
    score = f"{100.0 * killed / judged:.1f}%" if judged else "-"
    took = "-" if seconds is None else f"{seconds:.0f}s"
    return (
        f"{module:32} mutants {len(mine):4}  killed {killed:4}  survived "
        f"{len(survivors) - len(equivalent):3}  equivalent {len(equivalent):3}  "
        f"not run {counts['not checked']:4}  score {score:>6}  time {took}"
    )


def main(argv: list[str]) -> int:
    wanted = argv or modules()
    timings: dict[str, float] = {}
    for module in wanted:
        started = time.monotonic()
        code = subprocess.run(run_command(module), cwd=ROOT).returncode
        timings[module] = time.monotonic() - started
        if code != 0:
            print(f"mutmut run failed for {module} (exit {code})", file=sys.stderr)
            return 1
        print(score_line(module, results(), timings[module]), flush=True)  # as each one ends
    statuses = results()
    for module in wanted:
        print(score_line(module, statuses, timings.get(module)))
    for name, status in sorted(statuses.items()):
        if name.rsplit(".", 1)[0] in wanted and status not in KILLED and status != "not checked":
            print(f"  {status}: {name}{' (equivalent)' if name in EQUIVALENT else ''}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
