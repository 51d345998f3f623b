"""Light output helpers for the hot commands (no rich import on a cache hit)."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from predcache.timestamps import iso_utc

__all__ = ["iso_utc", "paint", "print_json", "use_colour"]

_COLOURS = {"hit": "32", "miss": "33", "bypass": "36", "dim": "2", "bold": "1"}


def use_colour() -> bool:
    """Colour only for a terminal, and never when NO_COLOR is set."""
    return sys.stdout.isatty() and "NO_COLOR" not in os.environ


def paint(text: str, style: str) -> str:
    return f"\033[{_COLOURS[style]}m{text}\033[0m" if use_colour() else text


def print_json(value: Any) -> None:
    """Exactly one JSON document on stdout."""
    sys.stdout.write(json.dumps(value, separators=(",", ":")) + "\n")
