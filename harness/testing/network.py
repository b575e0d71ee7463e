"""A socket-level guard for tests: records, and refuses, every attempt to reach a host off this machine.

Everything the tests talk to (the sandbox, the metadata DB, notebook kernels) is on loopback, so an
attempt to resolve or connect to any other host is a client library reaching for the internet on
its own (looker_sdk's error-doc download is the one this was written for). The guard sits at the
``socket`` module, below every client library, so it sees what no mock of our code could; it
refuses the attempt at once (as a firewall that rejects would) so that a test never waits on a
network this machine does not have, and keeps the list for the test to assert on.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", ""})


class OutboundBlocked(OSError):
    """A test tried to reach a host that is not on loopback."""


def is_loopback(host: Any) -> bool:
    """True for loopback addresses and names, this machine's own name, and a missing host (binds locally)."""
    if host is None:
        return True
    text = host.decode() if isinstance(host, bytes) else str(host)
    text = text.strip("[]").lower()
    if text in _LOCAL_NAMES or text == socket.gethostname().lower():
        return True
    try:
        return ipaddress.ip_address(text.split("%")[0]).is_loopback
    except ValueError:
        return False


@dataclass
class OutboundLog:
    """What was attempted: ("resolve" | "connect", host) pairs, in order."""

    attempts: list[tuple[str, str]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, kind: str, host: Any) -> None:
        with self._lock:
            self.attempts.append((kind, str(host)))

    @property
    def hosts(self) -> list[str]:
        """Distinct hosts attempted, first attempt first."""
        with self._lock:
            return list(dict.fromkeys(host for _, host in self.attempts))


@contextmanager
def loopback_only() -> Iterator[OutboundLog]:
    """Within the block, name lookups and connections to non-loopback hosts fail and are logged."""
    log = OutboundLog()
    real_getaddrinfo = socket.getaddrinfo
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not is_loopback(host):
            log.add("resolve", host)
            raise socket.gaierror(socket.EAI_NONAME, f"blocked by the test's loopback guard: {host}")
        return real_getaddrinfo(host, *args, **kwargs)

    def _check(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not is_loopback(address[0]):
            log.add("connect", address[0])
            raise OutboundBlocked(f"blocked by the test's loopback guard: {address[0]}")

    def connect(self: socket.socket, address: Any) -> None:
        _check(self, address)
        return real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        _check(self, address)
        return real_connect_ex(self, address)

    socket.getaddrinfo = getaddrinfo  # type: ignore[assignment]
    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
    try:
        yield log
    finally:
        socket.getaddrinfo = real_getaddrinfo  # type: ignore[assignment]
        socket.socket.connect = real_connect  # type: ignore[method-assign]
        socket.socket.connect_ex = real_connect_ex  # type: ignore[method-assign]
