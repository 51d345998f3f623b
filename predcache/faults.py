"""Simulated model failures (``--model-fail-rate``), to rehearse what a failing model does.

Like ``--model-delay``, this is simulated and labelled so wherever it is shown: a model source
wrapper that, after the real model call, raises :class:`ComputeError` for a fraction of calls.
The call itself still happens (and is counted), as a real failure would cost its time too.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

from predcache.errors import BadInputError, ComputeError
from predcache.registry import Computed, ModelSource


def check_fail_rate(rate: float) -> float:
    """``rate`` when it is a fraction from 0 to 1, else one :class:`BadInputError` line (nan
    included: it compares false with everything, so a range check alone lets it through)."""
    if math.isnan(rate) or not 0.0 <= rate <= 1.0:
        raise BadInputError(f"bad --model-fail-rate {rate:g}: must be from 0 to 1")
    return rate


class FailingModels:
    """A model source whose ``compute`` fails with probability ``rate`` (0 to 1)."""

    def __init__(
        self, inner: ModelSource, rate: float, rand: Callable[[], float] = random.random
    ) -> None:
        self.inner = inner
        self.rate = rate
        self._rand = rand

    def version(self, pair: str) -> str:
        return self.inner.version(pair)

    def check_horizon(self, pair: str, horizon_s: int) -> None:
        self.inner.check_horizon(pair, horizon_s)

    def compute(self, pair: str, horizon_s: int, at: float) -> Computed:
        computed = self.inner.compute(pair, horizon_s, at)
        if self._rand() < self.rate:
            raise ComputeError(
                f"model call failed for {pair}: simulated failure (--model-fail-rate {self.rate:g})"
            )
        return computed
