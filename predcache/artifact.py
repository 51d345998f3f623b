"""The model artifact: its JSON format, content version, validation, and files on disk.

Numpy-free and cheap to import on purpose: the registry reads a pair's header on a cache hit.
Both the header check and the full validation live here, built on one set of field checks, so
the fast path and the full load cannot drift apart.

Artifacts are JSON (never pickle: loading one must not execute code). ``version`` is the first
12 hex digits of SHA-256 over the canonical JSON of every other field, so identical training
gives the identical version, any change gives a new one, and cache keys built on the version
invalidate themselves on retraining. Nothing wall-clock is stored.
"""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from predcache.atomicfile import AtomicFile
from predcache.errors import BadInputError, ModelError
from predcache.pairs import pair_slug, parse_pair

SCHEMA = "predcache.model/1"
MODEL_VERSION_LEN = 12
_VERSION_RE = re.compile(rf"[0-9a-f]{{{MODEL_VERSION_LEN}}}")
_RETRAIN = "retrain with `predcache train`"


class ModelArtifact(NamedTuple):
    """A trained model. Build with :func:`make_artifact` (it computes ``version``).

    A NamedTuple rather than a dataclass: the registry imports this module on every cache hit,
    and ``dataclasses`` (with ``inspect``) would be the costliest import of a CLI hit."""

    schema: str
    pair: str
    k: int
    horizons_s: list[int]
    #: str(horizon_s) -> [intercept, w_lag1 (latest return), ..., w_lagk]
    coefficients: dict[str, list[float]]
    features: dict[str, Any]
    training: dict[str, Any]
    metrics: dict[str, dict[str, float]]
    version: str

    @property
    def step_s(self) -> int:
        return int(self.features["step_s"])


class ModelHeader(NamedTuple):
    """The few artifact fields the hit path needs."""

    pair: str
    version: str
    horizons_s: tuple[int, ...]
    path: Path


def artifact_path(models_dir: Path, pair: str) -> Path:
    """One JSON artifact per pair: ``<models_dir>/ETH-EUR.json``."""
    return models_dir / f"{pair_slug(pair)}.json"


def compute_version(content: Mapping[str, Any]) -> str:
    """SHA-256 prefix of the canonical JSON of every field except ``version``."""
    import hashlib  # not on the hit path: only training and full validation hash

    body = {key: value for key, value in content.items() if key != "version"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:MODEL_VERSION_LEN]


def make_artifact(
    pair: str,
    k: int,
    coefficients: dict[str, list[float]],
    metrics: dict[str, dict[str, float]],
    training: dict[str, Any],
    *,
    step_s: int = 60,
) -> ModelArtifact:
    """Assemble an artifact and stamp its content version."""
    content: dict[str, Any] = {
        "schema": SCHEMA,
        "pair": pair,
        "k": k,
        "horizons_s": sorted(int(h) for h in coefficients),
        "coefficients": coefficients,
        "features": {"kind": "log_returns", "k": k, "step_s": step_s},
        "training": training,
        "metrics": metrics,
    }
    return ModelArtifact(**content, version=compute_version(content))


def artifact_to_dict(art: ModelArtifact) -> dict[str, Any]:
    """A deep copy as plain JSON types (what :func:`save_artifact` writes)."""
    return copy.deepcopy(art._asdict())


# --------------------------------------------------------------------------- validation


def _check(ok: bool, problem: str) -> None:
    if not ok:
        raise ValueError(problem)


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_float(v: object) -> bool:
    return isinstance(v, float) and math.isfinite(v)


def _check_header(d: object) -> dict[str, Any]:
    """The checks the hit path relies on: schema, pair, horizons, version shape."""
    _check(isinstance(d, dict), "not a JSON object")
    assert isinstance(d, dict)
    _check(d.get("schema") == SCHEMA, f"schema is {d.get('schema')!r}, expected {SCHEMA!r}")
    pair, horizons, version = d.get("pair"), d.get("horizons_s"), d.get("version")
    _check(isinstance(pair, str) and parse_pair(pair) == pair, f"bad pair {pair!r}")
    _check(isinstance(horizons, list) and len(horizons) > 0, "horizons_s is not a list")
    assert isinstance(horizons, list)
    _check(all(_is_int(h) and h > 0 for h in horizons), "horizons_s holds a non-positive int")
    _check(len(set(horizons)) == len(horizons), "horizons_s has duplicates")
    _check(isinstance(version, str) and _VERSION_RE.fullmatch(version) is not None, "bad version")
    return d


def _validate(raw: object) -> ModelArtifact:
    d = _check_header(raw)
    expected = set(ModelArtifact._fields)
    _check(set(d) == expected, f"fields {sorted(set(d) ^ expected)} missing or unexpected")
    k, horizons = d["k"], d["horizons_s"]
    _check(_is_int(k) and 1 <= k <= 1024, f"bad k {k!r}")
    features = d["features"]
    _check(isinstance(features, dict), "features is not an object")
    step = features.get("step_s")
    _check(_is_int(step) and step > 0, "features.step_s is not a positive int")
    _check(features == {"kind": "log_returns", "k": k, "step_s": step}, "unknown features")
    coefs = d["coefficients"]
    _check(isinstance(coefs, dict), "coefficients is not an object")
    _check(sorted(coefs) == sorted(str(h) for h in horizons), "coefficients != horizons_s")
    for h, vec in coefs.items():
        _check(isinstance(vec, list) and len(vec) == k + 1, f"coefficients[{h}]: need {k + 1}")
        _check(all(_is_float(v) for v in vec), f"coefficients[{h}] holds a non-float")
    _check(isinstance(d["training"], dict) and isinstance(d["metrics"], dict), "bad training")
    version = d["version"]
    actual = compute_version(d)
    _check(actual == version, f"content does not match its version ({version} != {actual})")
    return ModelArtifact(**d)


def artifact_from_dict(d: object, *, source: str = "model artifact") -> ModelArtifact:
    """Validate a decoded artifact; any problem is a one-line :class:`ModelError`."""
    try:
        return _validate(d)
    except (ValueError, TypeError, RecursionError, BadInputError) as exc:
        raise ModelError(f"{source}: {exc}; {_RETRAIN}") from None


def read_header(path: Path, pair: str) -> ModelHeader:
    """The header of ``pair``'s artifact, read with stdlib json (no numpy, no version hash).

    A missing file raises ``FileNotFoundError`` (the caller decides: train, or say so); the
    full validation (:func:`load_artifact`) runs on the first miss."""
    fix = f"retrain with `predcache train --pairs {pair}`"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ModelError(
            f"model file {path} is unreadable or corrupt ({exc.__class__.__name__}); {fix}"
        ) from exc
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise ModelError(f"model file {path} is not a predcache model; {fix}")
    try:
        _check_header(data)
        _check(data["pair"] == pair, f"it holds {data['pair']}")
    except (ValueError, BadInputError) as exc:
        raise ModelError(f"model file {path} has a malformed header ({exc}); {fix}") from None
    return ModelHeader(pair, data["version"], tuple(data["horizons_s"]), path)


# --------------------------------------------------------------------------- files


def load_artifact(path: str | Path) -> ModelArtifact:
    """Read and validate an artifact written by :func:`save_artifact`."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ModelError(f"no model artifact at {path}; train one with `predcache train`") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"cannot read model artifact {path} ({exc}); {_RETRAIN}") from None
    try:
        d = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ModelError(f"model artifact {path} is not valid JSON ({exc}); {_RETRAIN}") from None
    return artifact_from_dict(d, source=f"model artifact {path}")


def save_artifact(art: ModelArtifact, path: str | Path) -> Path:
    """Write the artifact atomically: a reader sees the old file or the new one, never half."""
    d = artifact_to_dict(art)
    if compute_version(d) != art.version:
        raise ModelError(f"refusing to save model {art.version}: content does not match version")
    target = Path(path)
    text = json.dumps(d, indent=2, allow_nan=False) + "\n"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with AtomicFile(target) as out:
            out.commit(text)
    except OSError as exc:
        raise ModelError(f"cannot write model artifact {target} ({exc})") from None
    return target
