"""ml_common.services: free ports are bindable, health polling sees a real server answer.

(``docker_available`` is exercised by every docker-marked test: tests/conftest.py uses it.)
"""

from __future__ import annotations

import http.server
import socket
import threading

from ml_common.services import free_port, wait_healthy


def test_free_port_can_be_bound() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_wait_healthy_against_a_real_server_and_a_closed_port() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        assert wait_healthy(f"http://127.0.0.1:{server.server_port}/", timeout_s=10)
    finally:
        server.shutdown()
    assert not wait_healthy(f"http://127.0.0.1:{free_port()}/", timeout_s=1)
