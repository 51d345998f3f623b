"""``predcache.report.load`` on hand-written summary files: which files it finds, the exact
message of every refusal (file, column, CSV line, what is wrong), and the frame it returns.

In process and fast (no bench run): the summaries are written out here, so each value and
each line number in a message is known before the call. These are the mutation tests of
``report/load.py`` (``[tool.mutmut] pytest_add_cli_args_test_selection``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from predcache.errors import BadDataError, BadInputError
from predcache.report.load import check_summary, find_summaries, load_summaries


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def refusal(kind: type[Exception], call: object, *args: object) -> str:
    """The message of the error ``call(*args)`` raises, which must be exactly ``kind``."""
    assert callable(call)
    with pytest.raises(kind) as info:
        call(*args)
    assert type(info.value) is kind
    return str(info.value)


# --- find_summaries -------------------------------------------------------------------------


def test_folders_are_searched_recursively_sorted_and_unique(tmp_path: Path) -> None:
    b = write(tmp_path / "res" / "b" / "summary.csv", "run_id,requests\n")
    a = write(tmp_path / "res" / "a" / "deep" / "summary.csv", "run_id,requests\n")
    write(tmp_path / "res" / "a" / "requests.csv", "x\n")  # not a summary: ignored
    (tmp_path / "res" / "c" / "summary.csv").mkdir(parents=True)  # a folder of that name
    # the same file through its folder and by itself, and the folder twice: listed once
    found = find_summaries([tmp_path / "res", str(b), tmp_path / "res" / "b"])
    assert found == [a, b]


def test_a_file_must_be_a_summary(tmp_path: Path) -> None:
    other = write(tmp_path / "requests.csv", "x\n")
    message = refusal(BadInputError, find_summaries, [other])
    assert message == f"{other} is not a summary.csv; pass a results folder"


def test_a_missing_path_is_named(tmp_path: Path) -> None:
    message = refusal(BadInputError, find_summaries, [tmp_path / "nowhere"])
    assert message == f"no such results folder: {tmp_path / 'nowhere'}"


def test_a_home_relative_path_is_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    summary = write(tmp_path / "res" / "summary.csv", "run_id,requests\n")
    assert find_summaries(["~/res"]) == [summary]
    assert find_summaries(["~/res/summary.csv"]) == [summary]


# --- check_summary: the refusals, each with its exact line ----------------------------------


def frame(**columns: Sequence[object]) -> pd.DataFrame:
    """A summary of ``requests`` 10 per row, with the given columns."""
    rows = len(next(iter(columns.values())))
    base: dict[str, Sequence[object]] = {"run_id": ["r"] * rows, "requests": [10] * rows}
    return pd.DataFrame({**base, **{k: list(v) for k, v in columns.items()}})


def test_required_columns_are_named_when_missing() -> None:
    none = pd.DataFrame({"ttl_s": [1]})
    assert refusal(BadDataError, check_summary, none, "s.csv") == (
        "s.csv: not a predcache bench summary (no column run_id, requests)"
    )
    one = pd.DataFrame({"run_id": ["r"]})
    assert refusal(BadDataError, check_summary, one, "s.csv") == (
        "s.csv: not a predcache bench summary (no column requests)"
    )
    other = pd.DataFrame({"requests": [1]})
    assert refusal(BadDataError, check_summary, other, "s.csv") == (
        "s.csv: not a predcache bench summary (no column run_id)"
    )


def test_an_empty_run_id_names_its_csv_line() -> None:
    df = pd.DataFrame({"run_id": ["a", "b", None], "requests": [1, 2, 3]})
    # row 2 of the frame is CSV line 4 (line 1 is the header)
    assert refusal(BadDataError, check_summary, df, "s.csv") == (
        "s.csv: column run_id, line 4: 'nan' is empty"
    )


def test_a_text_cell_in_a_numeric_column_is_not_a_number() -> None:
    long = "x" * 50
    df = frame(hits=[1, 2, long, "y"])
    assert refusal(BadDataError, check_summary, df, "s.csv") == (
        f"s.csv: column hits, line 4: {'x' * 40!r} is not a number"
    )


# column, a value it takes at its bound, a value just past the bound, the "must be" text
BOUNDS = [
    ("ttl_s", 0, -0.5, ">= 0"),
    ("requests", 0, -1, ">= 0"),
    ("hit_ratio", 1, 1.25, "between 0 and 1"),
    ("hit_ratio", 0, -0.25, "between 0 and 1"),
    ("model_fail_rate", 1, 1.5, "between 0 and 1"),
    ("market_paths", 1, 0.5, ">= 1"),
    ("concurrency", 1, 0, ">= 1"),
    ("added_error_bps", -1e300, math.inf, "finite"),
    ("added_error_path0_bps", -5, -math.inf, "finite"),
    ("latency_p999_ms", 0, -1, ">= 0"),  # by its suffix
    ("median_age_s", 0, -2, ">= 0"),
    ("fill_wall_s", 0, -3, ">= 0"),
    ("mean_age_s", 0, math.inf, ">= 0"),  # infinite is impossible too
]


@pytest.mark.parametrize(("column", "edge", "past", "must"), BOUNDS)
def test_each_range_is_closed_and_named(column: str, edge: float, past: float, must: str) -> None:
    ok = check_summary(frame(**{column: [edge, None]}), "s.csv")
    assert ok[column].iloc[0] == edge and math.isnan(ok[column].iloc[1])
    df = frame(**{column: [edge, None, past]})
    assert refusal(BadDataError, check_summary, df, "s.csv") == (
        f"s.csv: column {column}, line 4: {str(float(past))!r} is impossible (must be {must})"
    )


def test_columns_without_a_known_range_are_left_alone() -> None:
    df = frame(label=["-1", "x"], delta=[-5, math.inf], latency_ms_note=["n", "m"])
    out = check_summary(df, "s.csv")
    assert out["label"].tolist() == ["-1", "x"] and out["delta"].tolist() == [-5, math.inf]
    assert out["latency_ms_note"].tolist() == ["n", "m"]


def test_numbers_read_as_text_become_floats_and_the_input_is_not_changed() -> None:
    df = frame(hits=["3", "4"], ttl_s=[30, 60])
    out = check_summary(df, "s.csv")
    assert out["hits"].dtype == np.float64 and out["hits"].tolist() == [3.0, 4.0]
    assert out["ttl_s"].dtype == np.int64 and out["ttl_s"].tolist() == [30, 60]
    assert df["hits"].tolist() == ["3", "4"] and "mode" not in df.columns


def test_hits_may_equal_the_requests_but_not_exceed_them() -> None:
    out = check_summary(frame(hits=[10, 0]), "s.csv")
    assert out["hits"].tolist() == [10, 0]
    assert refusal(BadDataError, check_summary, frame(hits=[10, 9, 11]), "s.csv") == (
        "s.csv: column hits, line 4: '11' is more than the requests"
    )


def test_mode_is_simulated_or_live_and_defaults_to_simulated() -> None:
    out = check_summary(frame(hits=[1, 2]), "s.csv")
    assert out["mode"].tolist() == ["simulated", "simulated"]
    kept = check_summary(frame(mode=["live", None, "simulated"]), "s.csv")
    assert kept["mode"].tolist()[0] == "live" and kept["mode"].tolist()[2] == "simulated"
    assert refusal(BadDataError, check_summary, frame(mode=["live", "sim"]), "s.csv") == (
        "s.csv: column mode, line 3: 'sim' is not one of ('simulated', 'live')"
    )


# --- load_summaries ---------------------------------------------------------------------------


def test_nothing_to_read_says_how_to_get_results(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    message = refusal(BadInputError, load_summaries, [tmp_path / "a", tmp_path / "b"])
    assert message == (
        f"no bench results under {tmp_path / 'a'}, {tmp_path / 'b'}: run `predcache bench` "
        "first (each run writes <out>/<run>/summary.csv)"
    )


def test_an_unreadable_summary_is_one_line(tmp_path: Path) -> None:
    empty = write(tmp_path / "e" / "summary.csv", "")
    assert refusal(BadDataError, load_summaries, [empty]) == (
        f"{empty}: cannot read it as CSV (No columns to parse from file)"
    )
    ragged = write(tmp_path / "r" / "summary.csv", "run_id,requests\nr,1\nr,1,2\n")
    assert refusal(BadDataError, load_summaries, [ragged]) == (
        f"{ragged}: cannot read it as CSV "
        "(Error tokenizing data. C error: Expected 2 fields in line 3, saw 3)"
    )


def test_a_long_read_error_is_cut_to_one_short_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A disk error (EIO) cannot be produced on purpose here, so ``read_csv`` raises it."""
    summary = write(tmp_path / "summary.csv", "run_id,requests\nr,1\n")
    words = [f"wd{i:03d}" for i in range(60)]  # 60 words of 5 characters

    def broken(*args: object, **kwargs: object) -> pd.DataFrame:
        raise OSError("\t".join(words[:30]) + "\n\n" + "  ".join(words[30:]))

    monkeypatch.setattr(pd, "read_csv", broken)
    shown = " ".join(words)[:160]
    assert len(shown) == 160 and shown.endswith(" wd025 wd02")
    assert refusal(BadDataError, load_summaries, [summary]) == (
        f"{summary}: cannot read it as CSV ({shown})"
    )


def test_a_bad_value_names_the_file_it_is_in(tmp_path: Path) -> None:
    write(tmp_path / "a" / "summary.csv", "run_id,requests\na,1\n")
    bad = write(tmp_path / "b" / "summary.csv", "run_id,requests,hit_ratio\nb,1,0.5\nb,1,2\n")
    assert refusal(BadDataError, load_summaries, [tmp_path]) == (
        f"{bad}: column hit_ratio, line 3: '2.0' is impossible (must be between 0 and 1)"
    )


def test_runs_are_concatenated_and_sorted_by_run_mode_target_and_ttl(tmp_path: Path) -> None:
    write(
        tmp_path / "z" / "summary.csv",
        "run_id,requests,ttl_s,mode,target\n"
        "20,1,60,simulated,http://a\n"
        "20,1,30,live,http://b\n"
        "20,1,90,live,http://a\n"
        "20,1,,live,http://a\n"
        "20,1,10,live,http://a\n",
    )
    write(tmp_path / "a" / "summary.csv", "run_id,requests,ttl_s\n100,1,5\n100,2,0\n")
    df = load_summaries([tmp_path])
    assert df.index.tolist() == list(range(7))
    assert df.columns.tolist() == ["run_id", "requests", "ttl_s", "mode", "target"]
    # run ids are text: "100" sorts before "20", and a number-like id is kept as written
    assert df["run_id"].tolist() == ["100", "100", "20", "20", "20", "20", "20"]
    assert df["requests"].tolist() == [2, 1, 1, 1, 1, 1, 1]
    assert df["mode"].tolist() == ["simulated"] * 2 + ["live"] * 4 + ["simulated"]
    # within run 20, live before simulated although the simulated row's target sorts first
    targets = df["target"].tolist()
    assert targets[2:] == ["http://a"] * 3 + ["http://b", "http://a"] and all(
        isinstance(t, float) and math.isnan(t) for t in targets[:2]
    )
    ttls = df["ttl_s"].tolist()
    assert ttls[:3] == [0, 5, 10] and math.isnan(ttls[4]) and ttls[3] == 90
    assert ttls[5:] == [30, 60]


def test_one_run_is_returned_sorted_with_a_fresh_index(tmp_path: Path) -> None:
    summary = write(tmp_path / "summary.csv", "run_id,requests,ttl_s\n7,3,60\n7,4,0\n")
    df = load_summaries([summary])
    assert df.columns.tolist() == ["run_id", "requests", "ttl_s", "mode"]
    assert df.index.tolist() == [0, 1] and df["ttl_s"].tolist() == [0, 60]
    assert df["run_id"].tolist() == ["7", "7"] and df["requests"].tolist() == [4, 3]


def test_a_mixed_column_past_the_first_chunk_is_read_as_one_type(tmp_path: Path) -> None:
    """pandas reads a big file in chunks of 2**18 rows unless told otherwise, and a column that
    is numbers in the first chunk and text later comes back mixed, with a DtypeWarning."""
    rows = 2**18 + 2
    lines = ["run_id,requests,label"] + [f"r,1,{i}" for i in range(rows - 1)] + ["r,1,x"]
    summary = write(tmp_path / "summary.csv", "\n".join(lines) + "\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        df = load_summaries([summary])
    assert len(df) == rows
    assert {type(v) for v in df["label"]} == {str}
    assert df["label"].iloc[0] == "0" and df["label"].iloc[-1] == "x"
