"""Offline behaviour: an unreachable download host fails fast with an explanation."""

import socket

from genjax.data.sources import unreachable


def test_unreachable_host_is_reported_quickly():
    with socket.socket() as s:  # a port nobody listens on: bind, then close
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    problem = unreachable(f"http://127.0.0.1:{port}/file.gz", timeout=2.0)
    assert problem is not None and f"127.0.0.1:{port}" in problem and "cannot connect" in problem


def test_reachable_host_passes():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        assert unreachable(f"http://127.0.0.1:{port}/file.gz", timeout=2.0) is None
