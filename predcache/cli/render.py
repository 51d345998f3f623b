"""Light output helpers for the hot commands (no rich import on a cache hit)."""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime
from typing import Any

_COLOURS = {"hit": "32", "miss": "33", "bypass": "36", "dim": "2", "bold": "1"}


def use_colour() -> bool:
    """Colour only for a terminal, and never when NO_COLOR is set."""
    return sys.stdout.isatty() and "NO_COLOR" not in os.environ


def paint(text: str, style: str) -> str:
    return f"\033[{_COLOURS[style]}m{text}\033[0m" if use_colour() else text


def iso_utc(epoch_s: float) -> str:
    """``2026-11-28T14:55:00Z``."""
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def print_json(value: Any) -> None:
    """Exactly one JSON document on stdout."""
    sys.stdout.write(json.dumps(value, separators=(",", ":")) + "\n")
