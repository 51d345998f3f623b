"""The one place that reaches into Typer's vendored click, behind a version test.

Typer 0.26+ ships click as the private ``typer._click`` (importing the real ``click`` as well
would add to every command, see check c of ``benchmarks/perf.py``). predcache needs two of its
exception classes, to tell a usage error from a crash by type. pyproject.toml pins typer to the
range checked here; a release outside it fails loudly at the first usage error rather than
misreading errors silently.
"""

from __future__ import annotations

import typer

#: the typer releases whose vendored click layout this module was checked against
SUPPORTED = ((0, 26), (0, 29))
_VERSION = tuple(int(part) for part in typer.__version__.split(".")[:2])
if not SUPPORTED[0] <= _VERSION < SUPPORTED[1]:  # pragma: no cover - guarded by the pin
    raise ImportError(
        f"predcache needs typer >={'.'.join(map(str, SUPPORTED[0]))},"
        f"<{'.'.join(map(str, SUPPORTED[1]))} (found {typer.__version__})"
    )

from typer._click.exceptions import ClickException, NoArgsIsHelpError  # noqa: E402

__all__ = ["ClickException", "NoArgsIsHelpError"]
