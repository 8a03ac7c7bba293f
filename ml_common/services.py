"""Local services for commands and tests: a free port, Docker, waiting for a health endpoint."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
import urllib.request


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (the OS picks it; free when this returns)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def docker_available(timeout_s: float = 30.0) -> bool:
    """Whether ``docker info`` reaches a running engine."""
    if shutil.which("docker") is None:
        return False
    try:
        done = subprocess.run(["docker", "info"], capture_output=True, timeout=timeout_s)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def wait_healthy(url: str, timeout_s: float = 90.0) -> bool:
    """Poll ``url`` until it answers 200 or ``timeout_s`` passes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(url, timeout=2) as response,  # noqa: S310 (local)
        ):
            if response.status == 200:
                return True
        time.sleep(0.5)
    return False
