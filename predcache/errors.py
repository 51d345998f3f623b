"""The one exception tree of predcache; the CLI maps it to exit codes in one place.

Tree::

    PredcacheError              any failure predcache reports on purpose     -> exit 1
    ├── BadInputError           the user's input is wrong (usage, values)    -> exit 2
    │   ├── BadDurationError    "90s", "5m" ... could not be parsed or is out of range
    │   ├── BadPairError        not BASE/QUOTE, or not in the catalogue
    │   ├── BadHorizonError     a horizon the model was not trained for
    │   ├── BadBackendError     an unknown or malformed backend spec/URL
    │   ├── BadModelSpecError   a --model SPEC that cannot be loaded as a model function
    │   └── BadDataError        a CSV (candles, trace) that cannot be used; names file and line
    ├── ModelError              a model artifact is missing, corrupt or foreign -> exit 1
    ├── StoreError              the cache backend failed (I/O, corrupt database) -> exit 1
    │   └── BackendUnavailableError  the backend cannot be reached (Redis down)
    └── ComputeError            the model call itself failed                   -> exit 1

HTTP maps ``BadInputError`` to 4xx and ``ComputeError`` to 503. Messages are one readable line:
they say what was wrong and, where there is one, the fix.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2


class PredcacheError(Exception):
    """Base class: a failure predcache reports on purpose, as one line."""

    exit_code = EXIT_FAILURE


class BadInputError(PredcacheError):
    """The user's input is wrong; nothing was changed."""

    exit_code = EXIT_BAD_INPUT


class BadDurationError(BadInputError):
    """A duration such as ``90s`` or ``5m`` could not be parsed or is out of range."""


class BadPairError(BadInputError):
    """A pair is not BASE/QUOTE or is not in the catalogue."""


class BadHorizonError(BadInputError):
    """A horizon the model was not trained for."""


class BadBackendError(BadInputError):
    """An unknown or malformed backend spec."""


class BadModelSpecError(BadInputError):
    """A ``--model`` SPEC that does not import, names no function, or has the wrong signature."""


class BadDataError(BadInputError):
    """A data file (candles, trace) cannot be used; the message names file and line."""


class ModelError(PredcacheError):
    """A model artifact is missing, corrupt or foreign."""


class StoreError(PredcacheError):
    """The cache backend failed."""


class BackendUnavailableError(StoreError):
    """The cache backend cannot be reached (for example Redis is down)."""


class ComputeError(PredcacheError):
    """The model call failed."""
