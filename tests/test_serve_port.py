"""``predcache serve`` on an address it cannot listen on: exit 1, one line, no banner."""

from __future__ import annotations

import socket
import subprocess
import sys

_ENTRY = "from predcache.cli import main; main()"


def test_busy_port_exits_1_with_one_line_before_the_banner() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-c", _ENTRY, "serve", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.splitlines() == [
        f"predcache: error: cannot listen on 127.0.0.1:{port}: Address already in use"
    ]
    assert proc.stdout == ""


def test_unresolvable_host_is_bad_input() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _ENTRY, "serve", "--host", "no-such-host.invalid", "--port", "1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.splitlines()) == 1
    assert proc.stderr.startswith("predcache: error: bad host 'no-such-host.invalid'")
