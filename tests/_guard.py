"""Imported first by every conftest: offline Hub, and no socket may connect beyond loopback."""

import os
import socket

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

_real_connect = socket.socket.connect


def _guarded_connect(self, address):
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and (host in ("127.0.0.1", "::1", "localhost") or host.startswith("/")):
        return _real_connect(self, address)
    raise RuntimeError(f"tests must not touch the network (tried to connect to {address!r})")


socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
