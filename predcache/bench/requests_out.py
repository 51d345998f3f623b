"""``--save-requests``: every request of every row, streamed to CSV or Parquet.

One row per request and configuration, written a chunk at a time as the replay produces it
(nothing is gathered in memory): CSV, or Parquet (pyarrow, one row group per chunk) when the
path ends in ``.parquet``. A sweep run in several processes writes one part per row next to
the target and :func:`join_parts` appends them, in row order, to the one file.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

from predcache.bench.accuracy import Counterfactuals, error_bps
from predcache.bench.records import OUTCOMES, Chunk
from predcache.errors import PredcacheError

COLUMNS = (
    "ttl_s", "stampede", "timestamp", "pair", "horizon", "cache", "age_s", "lookup_ms",
    "model_ms", "latency_ms", "served_price", "fresh_price", "realised_price",
    "served_error_bps", "fresh_error_bps", "detail",
)  # fmt: skip


def is_parquet(path: str | Path) -> bool:
    return str(path).lower().endswith(".parquet")


class RequestWriter:
    """Appends chunks of one row's requests to ``path`` (a header first unless ``header``
    is false: a CSV part that is appended to another file)."""

    def __init__(self, path: str | Path, keys: list[tuple[str, int]], *, header: bool) -> None:
        self.path = Path(path)
        self.pairs = np.array([p for p, _ in keys], dtype=object)
        self.horizons = np.array([h for _, h in keys], dtype=np.int64)
        self.header = header
        self._parquet: Any = None
        if not is_parquet(path):
            try:
                self.path.write_text("", encoding="utf-8")
            except OSError as exc:
                raise PredcacheError(f"cannot write {path}: {exc.strerror or exc}") from None

    def write(
        self, chunk: Chunk, view: Counterfactuals, ttl: int | float, stampede: str | None
    ) -> None:
        import pandas as pd

        outcome = np.array(OUTCOMES, dtype=object)[chunk.outcome]
        frame = pd.DataFrame(
            {
                "ttl_s": np.full(len(chunk), ttl),
                "stampede": np.full(len(chunk), stampede, dtype=object),
                "timestamp": chunk.times,
                "pair": self.pairs[chunk.key_index],
                "horizon": self.horizons[chunk.key_index],
                "cache": outcome,
                "age_s": np.floor(chunk.age_s * 1000.0) / 1000.0,  # never up to the TTL
                "lookup_ms": np.round(chunk.lookup_ms, 5),
                "model_ms": np.round(chunk.model_ms, 5),
                "latency_ms": np.round(chunk.latency_ms, 5),
                "served_price": chunk.served_price,
                "fresh_price": view.fresh,
                "realised_price": view.realised,
                "served_error_bps": np.round(error_bps(chunk.served_price, view.realised), 4),
                "fresh_error_bps": np.round(view.fresh_error_bps(), 4),
                "detail": np.where(
                    chunk.failed, "failed", np.where(chunk.stale_if_error, "stale-if-error", "")
                ).astype(object),
            }
        )
        try:
            if is_parquet(self.path):
                self._write_parquet(frame)
            else:
                with self.path.open("a", newline="", encoding="utf-8") as fh:
                    frame.to_csv(fh, header=self.header, index=False)
                self.header = False
        except OSError as exc:
            raise PredcacheError(f"cannot write {self.path}: {exc.strerror or exc}") from None

    def _write_parquet(self, frame: Any) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        text = {"stampede", "pair", "cache", "detail"}
        schema = pa.schema(
            [(c, pa.string() if c in text else pa.int64() if c == "horizon" else pa.float64())
             for c in COLUMNS]
        )  # fmt: skip
        table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
        if self._parquet is None:
            self._parquet = pq.ParquetWriter(self.path, table.schema)
        self._parquet.write_table(table)

    def close(self) -> None:
        if self._parquet is not None:
            self._parquet.close()
            self._parquet = None


def join_parts(target: Path, parts: list[Path]) -> None:
    """Append ``parts`` (written without a CSV header) to ``target``, in order, and remove
    them."""
    try:
        if is_parquet(target):
            import pyarrow.parquet as pq

            writer = None
            for part in parts:
                pf = pq.ParquetFile(part)
                for batch in pf.iter_batches():
                    if writer is None:
                        writer = pq.ParquetWriter(target, pf.schema_arrow)
                    writer.write_batch(batch)
            if writer is not None:
                writer.close()
        else:
            with target.open("w", encoding="utf-8", newline="") as out:
                out.write(",".join(COLUMNS) + "\n")
                for part in parts:
                    with part.open(encoding="utf-8", newline="") as fh:
                        shutil.copyfileobj(fh, out)
    except OSError as exc:
        raise PredcacheError(f"cannot write {target}: {exc.strerror or exc}") from None
    finally:
        for part in parts:
            part.unlink(missing_ok=True)
