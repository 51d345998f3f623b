"""Prints the figures this session measured (see :mod:`tests.reliability.figures`)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.reliability import figures

ENV_FIGURES = "PREDCACHE_RELIABILITY_FIGURES"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not figures.FIGURES:
        return
    terminalreporter.section("reliability figures (measured by this run)")
    for line in figures.render():
        terminalreporter.write_line(line)
    target = os.environ.get(ENV_FIGURES)
    if target:
        figures.write(Path(target))
        terminalreporter.write_line(f"written to {target}")
