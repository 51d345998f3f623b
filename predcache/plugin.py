"""Your own model behind the cache: ``--model package.module:function`` or ``path/file.py:fn``.

The function is called as ``function(pair: str, horizon_s: int, as_of: float) -> float``: the
predicted price of ``pair`` ``horizon_s`` seconds after market time ``as_of`` (epoch seconds).
It may read the market through :func:`predcache.market.history` / :func:`predcache.market.price`
(prices up to ``as_of``, never after).

:class:`PluginModels` implements the predictor's :class:`~predcache.registry.ModelSource`
protocol, so predict, serve and bench cache a plugged model through the same predictor as the
toy one (the registry is left alone). Its version, part of every cache key, is ``--model-version``
or a hash of the function's source file, so editing the file invalidates its entries.

What can go wrong, and how it is reported (one line each, through :mod:`predcache.errors`):
a SPEC that does not parse, a file or module that does not import, a missing or non-callable
function, a signature that cannot take ``(pair, horizon_s, as_of)``: bad input, exit 2, before
any store is opened. A call that raises, or returns anything but a finite number > 0 (NaN,
inf, a string, a bool): :class:`ComputeError`, exit 1, and nothing is stored.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import math
import re
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from predcache.errors import BadInputError, BadModelSpecError, ComputeError
from predcache.registry import Computed

#: a version goes into the cache key between ``:`` separators: keep it to a safe alphabet
_VERSION = re.compile(r"[A-Za-z0-9._-]{1,64}")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
EXAMPLE = "use package.module:function or path/to/file.py:function"


def parse_model_version(text: str) -> str:
    """``--model-version``: letters, digits, ``.``, ``_``, ``-`` (1-64), as it goes into keys."""
    if not _VERSION.fullmatch(text):
        raise BadInputError(
            f"bad --model-version {text[:64]!r}: use 1-64 letters, digits, '.', '_' or '-'"
        )
    return text


class PluginModels:
    """A model function as the predictor's model source (any pair in the catalogue, any horizon)."""

    def __init__(self, spec: str, fn: Callable[..., object], model_version: str) -> None:
        self.spec = spec
        self.fn = fn
        self.model_version = model_version

    def version(self, pair: str) -> str:
        return self.model_version

    def check_horizon(self, pair: str, horizon_s: int) -> None:
        """Any whole number of seconds > 0 (already checked by :func:`parse_horizon`)."""

    def predict(self, pair: str, horizon_s: int, at: float) -> float:
        """Call the function at market time ``at``; its answer must be a finite number > 0."""
        return checked_price(self.fn(pair, horizon_s, at), f"model {self.spec} for {pair}")

    def compute(self, pair: str, horizon_s: int, at: float) -> Computed:
        price = self.predict(pair, horizon_s, at)
        from predcache import market  # numpy on a miss only, as for the toy model

        return Computed(price, float(at), market.price(pair, at))


def checked_price(value: object, what: str) -> float:
    """``value`` as a float price, or one :class:`ComputeError` line saying what it was."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ComputeError(f"{what} returned {type(value).__name__}, expected a number (float)")
    price = float(value)
    if not math.isfinite(price) or price <= 0:
        raise ComputeError(f"{what} returned {price!r}, expected a finite price > 0")
    return price


def load_plugin(spec: str, model_version: str | None = None) -> PluginModels:
    """Load SPEC's function, check it can be called as ``(pair, horizon_s, as_of)``, version it."""
    fn, source = load_function(spec)
    if model_version is None:
        model_version = source_version(source, fn)
    return PluginModels(spec, fn, parse_model_version(model_version))


def normalize_spec(spec: str) -> str:
    """SPEC with a file path made absolute, so a serve worker in another cwd loads the same file."""
    target, _, name = spec.rpartition(":")
    if _is_path(target):
        return f"{Path(target).expanduser().resolve()}:{name}"
    return spec


def load_function(spec: str) -> tuple[Callable[..., object], Path | None]:
    """The callable named by SPEC and the file it came from (``None`` when there is no file)."""
    target, sep, name = spec.strip().rpartition(":")
    if not sep or not target or not _IDENT.fullmatch(name):
        raise BadModelSpecError(f"bad --model {spec!r}: {EXAMPLE}")
    module = _import_file(target, spec) if _is_path(target) else _import_module(target, spec)
    fn = getattr(module, name, None)
    if fn is None:
        raise BadModelSpecError(f"bad --model {spec!r}: {target} has no function {name!r}")
    if not callable(fn):
        raise BadModelSpecError(f"bad --model {spec!r}: {name!r} is not a function")
    _check_signature(fn, spec)
    file = getattr(module, "__file__", None)
    return fn, Path(file) if file else None


def source_version(source: Path | None, fn: Callable[..., object]) -> str:
    """A hash of the function's source file (12 hex digits): a new file is a new version."""
    digest = hashlib.sha256()
    if source is not None and source.is_file():
        digest.update(source.read_bytes())
    else:  # no file (a built-in or a C extension): the qualified name is all there is
        digest.update(f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', '')}".encode())
    digest.update(b"\0" + getattr(fn, "__name__", "").encode())
    return f"py-{digest.hexdigest()[:12]}"


def _is_path(target: str) -> bool:
    return target.endswith(".py") or "/" in target or "\\" in target


def _import_file(target: str, spec: str) -> ModuleType:
    path = Path(target).expanduser()
    if not path.is_file():
        raise BadModelSpecError(f"bad --model {spec!r}: no such file {target}")
    name = "predcache_model_" + hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
    loaded = sys.modules.get(name)
    if loaded is not None:
        return loaded
    mspec = importlib.util.spec_from_file_location(name, path)
    if mspec is None or mspec.loader is None:
        raise BadModelSpecError(f"bad --model {spec!r}: {target} is not a Python file")
    module = importlib.util.module_from_spec(mspec)
    sys.modules[name] = module  # dataclasses and pickling-free introspection look it up here
    try:
        mspec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise BadModelSpecError(
            f"bad --model {spec!r}: {target} does not import: {_say(exc)}"
        ) from None
    return module


def _import_module(target: str, spec: str) -> ModuleType:
    if not all(_IDENT.fullmatch(part) for part in target.split(".")):
        raise BadModelSpecError(f"bad --model {spec!r}: {EXAMPLE}")
    if "" not in sys.path and "." not in sys.path:  # as uvicorn does: modules in the cwd count
        sys.path.insert(0, "")
    try:
        return importlib.import_module(target)
    except ModuleNotFoundError as exc:
        raise BadModelSpecError(f"bad --model {spec!r}: no module named {exc.name!r}") from None
    except Exception as exc:
        raise BadModelSpecError(
            f"bad --model {spec!r}: module {target} does not import: {_say(exc)}"
        ) from None


def _check_signature(fn: Callable[..., object], spec: str) -> None:
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return  # some built-ins have none to show; the first call will tell
    try:
        signature.bind("ETH/EUR", 300, 0.0)
    except TypeError as exc:
        raise BadModelSpecError(
            f"bad --model {spec!r}: {getattr(fn, '__name__', 'it')}{signature} cannot be called "
            f"as function(pair, horizon_s, as_of): {exc}"
        ) from None


def _say(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{exc.__class__.__name__}: {text}" if text else exc.__class__.__name__
