"""A loopback TCP proxy that lets ``redshift_connector`` talk to a stock PostgreSQL, so the
Redshift connector's tests run on a real PostgreSQL engine.

What it changes, and only during the startup phase (after the first ReadyForQuery the bytes
are copied untouched in both directions):

- SSLRequest is answered with ``N`` (the test server has no TLS; connect with ``ssl=False``).
- The startup packet loses the keys PostgreSQL rejects with 42704 (unrecognized configuration
  parameter): ``client_protocol_version``, ``driver_version``, ``os_version``,
  ``driver_discovery_version``.
- AuthenticationSASL: PostgreSQL ends the mechanism list with an empty name; the driver splits
  the list without dropping it and its SCRAM client refuses the empty mechanism, so the list
  terminator is removed.
- ParameterStatus ``server_version`` keeps only its numeric prefix (``15.20 (Debian ...)`` ->
  ``15.20``); the driver parses it with ``packaging.version``.

Protocol reference: https://www.postgresql.org/docs/current/protocol-message-formats.html
"""
from __future__ import annotations

import re
import socket
import struct
import threading
from contextlib import suppress

SSL_REQUEST = 80877103
PROTOCOL_3 = 196608
DROPPED_STARTUP_KEYS = frozenset({b"client_protocol_version", b"driver_version", b"os_version", b"driver_discovery_version"})
_VERSION_PREFIX = re.compile(rb"^\d+(\.\d+)*")


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("peer closed during startup")
        data += chunk
    return data


def rewrite_startup(body: bytes) -> bytes:
    """A StartupMessage body (after the length) without the keys PostgreSQL rejects."""
    version, rest = body[:4], body[4:]
    parts = rest.split(b"\0")
    kept = []
    for key, value in zip(parts[0::2], parts[1::2], strict=False):
        if key and key not in DROPPED_STARTUP_KEYS:
            kept += [key, value]
    payload = version + b"".join(p + b"\0" for p in kept) + b"\0"
    return struct.pack("!I", len(payload) + 4) + payload


def rewrite_backend_message(kind: bytes, body: bytes) -> bytes:
    """One backend message (type byte + body without length), rewritten for the driver."""
    if kind == b"R" and len(body) >= 4 and struct.unpack("!I", body[:4])[0] == 10:  # AuthenticationSASL
        names = [n for n in body[4:].split(b"\0") if n]
        body = body[:4] + b"\0".join(names) + b"\0"
    elif kind == b"S":
        key, _, value = body.partition(b"\0")
        if key == b"server_version":
            match = _VERSION_PREFIX.match(value)
            if match:
                body = key + b"\0" + match.group(0) + b"\0"
    return kind + struct.pack("!I", len(body) + 4) + body


class RedshiftProxy:
    """``with RedshiftProxy(("127.0.0.1", 5432)) as proxy: connect(port=proxy.port, ssl=False)``."""

    def __init__(self, upstream: tuple[str, int]):
        self.upstream = upstream
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = False
        self.bytes_from_server = 0  # what crossed the wire towards the driver (tests of streaming)
        self._accepter = threading.Thread(target=self._accept_loop, name="redshift-proxy", daemon=True)

    def __enter__(self) -> RedshiftProxy:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def start(self) -> None:
        self._accepter.start()

    def stop(self) -> None:
        self._closed = True
        with suppress(OSError):  # wakes the accept() that close() alone would leave blocked
            self._listener.shutdown(socket.SHUT_RDWR)
        with suppress(OSError):
            self._listener.close()
        with self._lock:
            sockets, self._sockets = set(self._sockets), set()
        for sock in sockets:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with suppress(OSError):
                sock.close()
        self._accepter.join(5)

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.add(sock)

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self._track(client)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.upstream, timeout=10)
            upstream.settimeout(None)
            # Without it Nagle's algorithm and delayed ACKs add ~40 ms to every relayed round trip.
            for sock in (client, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            client.close()
            return
        self._track(upstream)
        try:
            while True:  # SSLRequest (answered here) until the real startup packet or a CancelRequest
                length = struct.unpack("!I", _recv_exact(client, 4))[0]
                body = _recv_exact(client, length - 4)
                code = struct.unpack("!I", body[:4])[0]
                if code == SSL_REQUEST:
                    client.sendall(b"N")
                    continue
                upstream.sendall(rewrite_startup(body) if code == PROTOCOL_3 else struct.pack("!I", length) + body)
                break
        except OSError:  # ConnectionError too: a peer went away
            self._close_pair(client, upstream)
            return
        threading.Thread(target=self._pump, args=(client, upstream), kwargs={"from_server": False}, daemon=True).start()
        self._backend_to_client(upstream, client)

    def _backend_to_client(self, upstream: socket.socket, client: socket.socket) -> None:
        try:
            while True:  # rewrite messages until the first ReadyForQuery, then copy
                kind = _recv_exact(upstream, 1)
                length = struct.unpack("!I", _recv_exact(upstream, 4))[0]
                message = rewrite_backend_message(kind, _recv_exact(upstream, length - 4))
                self._count(len(message))
                client.sendall(message)
                if kind in (b"Z", b"E"):
                    break
        except OSError:  # ConnectionError too: a peer went away
            self._close_pair(client, upstream)
            return
        self._pump(upstream, client, from_server=True)

    def _pump(self, source: socket.socket, sink: socket.socket, *, from_server: bool) -> None:
        with suppress(OSError):  # either side closing ends the relay
            while chunk := source.recv(65536):
                if from_server:
                    self._count(len(chunk))
                sink.sendall(chunk)
        self._close_pair(source, sink)

    def _count(self, n: int) -> None:
        with self._lock:
            self.bytes_from_server += n

    def _close_pair(self, *socks: socket.socket) -> None:
        for sock in socks:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with suppress(OSError):
                sock.close()
            with self._lock:
                self._sockets.discard(sock)
