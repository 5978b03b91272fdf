"""What the annotation app checks on every request before a handler runs, and the headers it adds.

- **Host**: only the names the server was started for are served (a DNS-rebinding page that points its own
  domain at 127.0.0.1 is answered with 421);
- **Origin**: a request a browser sends from another site (``Origin`` of another origin, or
  ``Sec-Fetch-Site: cross-site``) is refused with 403, so a page elsewhere cannot answer, undo or read anything;
- **Content type**: every ``POST`` must be ``application/json`` (415 otherwise), which a cross-site form can
  never send without a CORS preflight the app does not grant;
- **Framing**: every response carries ``X-Frame-Options: DENY`` and a Content-Security-Policy with
  ``frame-ancestors 'none'`` (the page answers on single key presses, so it must never be framed);
- **Failed secrets**: a client address that gives a wrong campaign token or session secret ``max_failures``
  times within ``window_seconds`` is answered 429 for the rest of that window (``FailureLimiter``).
"""

from __future__ import annotations

import ipaddress
import json
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass
from typing import Any

__all__ = ["SECURITY_HEADERS", "FailureLimiter", "HostRule", "RequestGuard"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Sent with every response (HTML pages send a stricter ``Content-Security-Policy`` of their own).
SECURITY_HEADERS = {
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
}

_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


@dataclass(frozen=True)
class HostRule:
    """The ``Host`` header values a server answers: ``names`` (lower case, without port), and any IP literal when
    ``any_ip_literal`` (a server bound to every interface, reached by one of its addresses).

    Examples:
        >>> rule = HostRule.for_bind_address("127.0.0.1")
        >>> rule.allows("127.0.0.1:8765"), rule.allows("localhost"), rule.allows("evil.example:8765")
        (True, True, False)
        >>> HostRule.for_bind_address("0.0.0.0", extra=["lab-pc"]).allows("10.1.2.3:8765")
        True
    """

    names: frozenset[str]
    any_ip_literal: bool = False

    @classmethod
    def for_bind_address(cls, host: str, extra: Iterable[str] = ()) -> HostRule:
        """The rule for a server bound to ``host`` (plus ``extra`` names people use to reach it)."""
        import socket

        names = {n.lower().strip("[]") for n in extra}
        try:
            address = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            address = None
        if host == "localhost" or (address is not None and address.is_loopback):
            return cls(frozenset(names | _LOOPBACK_NAMES))
        if address is not None and address.is_unspecified:  # 0.0.0.0 / ::: every interface
            names |= {socket.gethostname().lower(), socket.getfqdn().lower()} | _LOOPBACK_NAMES
            return cls(frozenset(names), any_ip_literal=True)
        return cls(frozenset(names | {host.lower().strip("[]")}))

    def allows(self, host_header: str | None) -> bool:
        """Whether a request with this ``Host`` header is served."""
        if not host_header:
            return False
        host = host_header.strip().lower()
        if host.startswith("["):  # [v6]:port
            host = host[1:].split("]", 1)[0]
        elif host.count(":") == 1:
            host = host.split(":", 1)[0]
        if host in self.names:
            return True
        if self.any_ip_literal:
            try:
                ipaddress.ip_address(host)
                return True
            except ValueError:
                return False
        return False


class FailureLimiter:
    """Counts failed secrets per client address; after ``max_failures`` within ``window_seconds`` the client is
    refused (``blocked``) until the oldest failure leaves the window. Thread-safe.

    Examples:
        >>> limiter = FailureLimiter(max_failures=2, window_seconds=60)
        >>> limiter.failed("10.0.0.1"); limiter.blocked("10.0.0.1")
        False
        >>> limiter.failed("10.0.0.1"); limiter.blocked("10.0.0.1"), limiter.blocked("10.0.0.2")
        (True, False)
    """

    def __init__(self, max_failures: int = 10, window_seconds: float = 60.0) -> None:
        self.max_failures = max_failures
        self.window_seconds = window_seconds
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, client: str, now: float) -> deque[float]:
        times = self._failures.setdefault(client, deque())
        while times and times[0] <= now - self.window_seconds:
            times.popleft()
        return times

    def failed(self, client: str) -> None:
        """Record one failed secret from ``client``."""
        now = time.monotonic()
        with self._lock:
            self._recent(client, now).append(now)
            if len(self._failures) > 10_000:  # forget idle clients rather than grow without bound
                for key in [k for k, v in self._failures.items() if not v]:
                    del self._failures[key]

    def blocked(self, client: str) -> bool:
        """Whether ``client`` has failed ``max_failures`` times within the window."""
        with self._lock:
            return len(self._recent(client, time.monotonic())) >= self.max_failures

    def retry_after(self, client: str) -> int:
        """Seconds until ``client`` may try again."""
        now = time.monotonic()
        with self._lock:
            times = self._recent(client, now)
            return max(1, int(times[0] + self.window_seconds - now) + 1) if times else 0


class RequestGuard:
    """ASGI middleware: the Host, Origin and content-type checks of this module, and its headers on every
    response."""

    def __init__(self, app: ASGIApp, hosts: HostRule) -> None:
        self.app = app
        self.hosts = hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        refusal = self._refusal(scope, headers)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.decode("latin-1").lower() for k, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    (k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items() if k not in present
                ]
            await send(message)

        if refusal is None:
            await self.app(scope, receive, send_with_headers)
            return
        status, text = refusal
        body = json.dumps({"error": text}).encode()
        await send_with_headers(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def _refusal(self, scope: Scope, headers: dict[str, str]) -> tuple[int, str] | None:
        host = headers.get("host")
        if not self.hosts.allows(host):
            return 421, (
                f"this server does not answer for host {str(host)[:60]!r}; open it by the address it was "
                "started on (or start it with --allowed-host NAME)."
            )
        origin = headers.get("origin")
        scheme = scope.get("scheme", "http")
        if origin is not None and origin.lower() != f"{scheme}://{host}".lower():
            return 403, "requests from other sites are refused."
        if headers.get("sec-fetch-site") == "cross-site":
            return 403, "requests from other sites are refused."
        if scope.get("method") == "POST":
            content_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
            if content_type != "application/json":
                return 415, "send the request body as JSON (Content-Type: application/json)."
        return None
