"""Corruption, seen from the command line (tests/test_disk_store.py covers the store itself).

Decisions tested here, and documented in docs/reliability.md:

- a garbage or truncated cache database is **quarantined** (moved aside as
  ``cache.db.corrupt-<time>-<pid>``) with one warning line, and predict answers from an empty
  store; the next predict is a hit;
- a corrupt or foreign model artifact is **one error line naming the file and
  ``predcache train``**, exit 1, and the artifact is left as it was (for a post-mortem);
- a planted pickle or any non-JSON value at the very key predict reads is a corrupt entry: a
  miss, recomputed and overwritten, and never executed (disk and Redis).
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

import diskcache
import pytest
import redis

from predcache.artifact import artifact_path, read_header
from predcache.keys import prediction_key, slot_tagged
from tests.reliability import figures
from tests.reliability.helpers import cli


class Planted:
    """Creates ``marker`` if anything ever unpickles it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[Path]]:
        return (Path.touch, (self.marker,))


def predict_json(*args: str) -> tuple[int, dict[str, object] | None, list[str]]:
    out = cli("predict", "ETH/EUR", "--horizon", "5m", "--json", *args)
    body = json.loads(out.stdout) if out.returncode == 0 else None
    return out.returncode, body, out.stderr.splitlines()


@pytest.mark.parametrize("damage", ["garbage", "truncated", "zeroed-header", "text"])
def test_corrupt_cache_database_is_quarantined_with_one_warning(
    damage: str, models_dir: Path, tmp_path: Path
) -> None:
    assert predict_json()[0] == 0
    db = tmp_path / "cache" / "cache.db"
    data = db.read_bytes()
    db.write_bytes(
        {
            "garbage": os.urandom(len(data)),
            "truncated": data[: len(data) // 3],
            "zeroed-header": b"\0" * 100 + data[100:],
            "text": b"this is not a database\n" * 100,
        }[damage]
    )
    code, body, stderr = predict_json()
    assert code == 0 and body is not None and body["cache"] == "miss"
    assert len(stderr) == 1 and "warning" in stderr[0] and "corrupt" in stderr[0], stderr
    moved = list((tmp_path / "cache").glob("cache.db.corrupt-*"))
    assert len(moved) == 1 and moved[0].name in stderr[0]
    code, body, stderr = predict_json()
    assert code == 0 and body is not None and body["cache"] == "hit" and stderr == []
    assert cli("cache", "stats").returncode == 0
    figures.add("corruption", cache_db_damaged=1, quarantined=1)


def _foreign_pickle(path: Path) -> None:
    path.write_bytes(pickle.dumps(Planted(path.with_name("pwned"))))


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda p: p.write_bytes(b""), id="empty"),
        pytest.param(lambda p: p.write_bytes(os.urandom(500)), id="binary"),
        pytest.param(lambda p: p.write_text(p.read_text()[:200]), id="truncated"),
        pytest.param(lambda p: p.write_text('{"schema": "sklearn/1", "coef": [1]}'), id="foreign"),
        pytest.param(lambda p: p.write_text("[1, 2, 3]"), id="not-an-object"),
        pytest.param(_foreign_pickle, id="pickle"),
        pytest.param(
            lambda p: shutil.copy(p.with_name("BTC-USD.json"), p), id="another-pairs-model"
        ),
    ],
)
def test_corrupt_model_artifact_is_one_line_error(make: object, models_dir: Path) -> None:
    path = artifact_path(models_dir, "ETH/EUR")
    make(path)  # type: ignore[operator]
    before = path.read_bytes()
    code, _, stderr = predict_json()
    assert code == 1
    assert len(stderr) == 1 and str(path) in stderr[0] and "predcache train" in stderr[0], stderr
    assert "Traceback" not in "\n".join(stderr)
    assert path.read_bytes() == before and not (models_dir / "pwned").exists()
    figures.add("corruption", model_artifacts_damaged=1)


def _planted_values(marker: Path) -> list[bytes | str]:
    return [
        pickle.dumps(Planted(marker)),
        "{not json",
        '{"pair": "ETH/EUR"}',  # JSON, but not an entry
        '{"pair":"ETH/EUR","horizon_s":300,"predicted_price":-1,"as_of":1,"created_at":1,'
        '"model_version":"x","compute_ms":1}',  # an entry with an impossible price
        b"\x80\x04\x95garbage",
    ]


def test_planted_values_on_disk_are_misses_never_executed(models_dir: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    version = read_header(artifact_path(models_dir, "ETH/EUR"), "ETH/EUR").version
    key = prediction_key(version, "ETH/EUR", 300)
    values = [*_planted_values(marker), Planted(marker)]  # the last one pickled by diskcache
    for value in values:
        raw = diskcache.Cache(str(tmp_path / "cache"))  # a foreign writer, pickling Disk
        raw.set(key, value)
        raw.close()
        code, body, _ = predict_json()
        assert code == 0 and body is not None and body["cache"] == "miss", value
        assert predict_json()[1]["cache"] == "hit"  # type: ignore[index]
    assert not marker.exists()
    figures.add("corruption", planted_values_disk=len(values), executed=0)


def test_planted_values_in_redis_are_misses_never_executed(
    redis_url: str, models_dir: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    version = read_header(artifact_path(models_dir, "ETH/EUR"), "ETH/EUR").version
    rkey = slot_tagged("predcache", prediction_key(version, "ETH/EUR", 300))
    client = redis.Redis.from_url(redis_url)
    values = _planted_values(marker)
    for value in values:
        client.set(rkey, value)
        code, body, _ = predict_json("--backend", redis_url)
        assert code == 0 and body is not None and body["cache"] == "miss", value
        assert client.get(rkey) != (value if isinstance(value, bytes) else value.encode())
    client.close()
    assert not marker.exists()
    figures.add("corruption", planted_values_redis=len(values), executed=0)
