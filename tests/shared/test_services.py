"""ml_common.services: free ports are bindable, health polling tells a healthy server from an
unhealthy one and from a closed port, and docker_available asks the engine, not the PATH."""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from ml_common.services import docker_available, free_port, wait_healthy


def test_free_port_can_be_bound_and_listened_on() -> None:
    port = free_port()
    assert 1024 <= port <= 65535
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
        sock.listen()
        assert sock.getsockname() == ("127.0.0.1", port)
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass


@contextmanager
def server_answering(status: int) -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the http.server API)
            self.send_response(status)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/health"
    finally:
        server.shutdown()
        server.server_close()


def test_wait_healthy_needs_a_200() -> None:
    with server_answering(200) as url:
        assert wait_healthy(url, timeout_s=10)
    with server_answering(503) as url:  # answering is not being healthy
        assert not wait_healthy(url, timeout_s=1.5)
    assert not wait_healthy(f"http://127.0.0.1:{free_port()}/health", timeout_s=1)


@pytest.mark.parametrize(("exit_code", "expected"), [(0, True), (1, False)])
def test_docker_available_follows_docker_info(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exit_code: int, expected: bool
) -> None:
    fake = tmp_path / "docker"
    fake.write_text(f'#!/bin/sh\n[ "$1" = info ] && exit {exit_code}\nexit 3\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert docker_available(timeout_s=5) is expected


def test_docker_available_is_false_without_a_client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no docker binary
    assert docker_available(timeout_s=5) is False
