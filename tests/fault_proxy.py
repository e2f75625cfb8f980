"""A TCP proxy on 127.0.0.1 that injects real storage faults in front of a server (the moto
server): it can pass traffic through, black-hole it (accept, read, never answer), trickle the
answer one byte at a time, claim a huge body and trickle it (``Content-Length`` rewritten), delay
every chunk, or hold the requests that start with given bytes until released. The mode can
change while connections are open; each chunk obeys the mode in force when it arrives, so pooled
keep-alive connections are affected too.

Reusable by any test that needs a storage fault::

    with FaultProxy(moto_endpoint) as proxy:
        store = S3Store(bucket, client=client_for(proxy.url))
        proxy.black_hole()
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from urllib.parse import urlsplit

CHUNK = 65536


@dataclass(frozen=True)
class Mode:
    """What the proxy does with traffic right now."""

    name: str = "pass"  # pass | black_hole | trickle | claim | delay
    interval: float = 0.0  # trickle, claim: seconds between bytes; delay: seconds per chunk
    claimed: int = 0  # claim: the Content-Length every answer announces


class FaultProxy:
    """A threaded TCP proxy to ``upstream`` (``http://host:port``) with switchable faults."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._mode = Mode()
        self._held: list[bytes] = []  # request prefixes held back until release()
        self._released = threading.Condition()
        self._seen: list[bytes] = []  # first line of every client chunk that looked like one
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, name="fault-proxy", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- faults ------------------------------------------------------------------------------
    def passthrough(self) -> None:
        self._mode = Mode()

    def black_hole(self) -> None:
        """Accept connections and read requests, never answer."""
        self._mode = Mode("black_hole")

    def trickle(self, interval: float = 0.5) -> None:
        """Forward requests; send answers back one byte every ``interval`` seconds."""
        self._mode = Mode("trickle", interval)

    def claim(self, content_length: int, interval: float = 0.5) -> None:
        """Forward requests; answer each with its headers at once but ``Content-Length``
        rewritten to ``content_length``, then its body one byte every ``interval`` seconds (a
        server that promises a huge object and trickles it)."""
        self._mode = Mode("claim", interval, content_length)

    def delay(self, seconds: float) -> None:
        """Forward everything, each client chunk ``seconds`` late (a slow link)."""
        self._mode = Mode("delay", seconds)

    def hold(self, prefix: bytes) -> None:
        """Hold back (until ``release``) every request whose first bytes are ``prefix``, e.g.
        ``b"PUT /bucket/metadata/asset_registry.json"``."""
        with self._released:
            self._held.append(prefix)

    def release(self) -> None:
        with self._released:
            self._held.clear()
            self._released.notify_all()

    def seen(self, prefix: bytes) -> int:
        """How many requests starting with ``prefix`` reached the proxy."""
        with self._lock:
            return sum(1 for line in self._seen if line.startswith(prefix))

    def wait_for(self, prefix: bytes, count: int = 1, timeout: float = 60.0) -> None:
        """Block until ``count`` requests starting with ``prefix`` arrived."""
        deadline = time.monotonic() + timeout
        while self.seen(prefix) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"no request {prefix!r} within {timeout}s")
            time.sleep(0.01)

    # -- plumbing ----------------------------------------------------------------------------
    def close(self) -> None:
        self._closed.set()
        self.release()
        with contextlib.suppress(OSError):
            # Closing alone leaves a blocked accept() waiting for one more connection (Linux);
            # shutting the listener down wakes it.
            self._listener.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _track(self, sock: socket.socket) -> socket.socket:
        with self._lock:
            self._sockets.add(sock)
        return sock

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self._track(client)
            threading.Thread(
                target=self._serve, args=(client,), name="fault-proxy-conn", daemon=True
            ).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = self._track(socket.create_connection(self.upstream))
        except OSError:
            self._drop(client)
            return
        back = threading.Thread(
            target=self._pump_back, args=(upstream, client), name="fault-proxy-back", daemon=True
        )
        back.start()
        try:
            while True:
                data = client.recv(CHUNK)
                if not data:
                    break
                self._note(data)
                self._wait_if_held(data)
                mode = self._mode
                if mode.name == "black_hole":
                    continue  # swallow the request: the client waits for an answer forever
                if mode.name == "delay":
                    time.sleep(mode.interval)
                upstream.sendall(data)
        except OSError:
            pass
        finally:
            self._drop(client, upstream)

    def _pump_back(self, upstream: socket.socket, client: socket.socket) -> None:
        head = b""  # claim: an answer's headers, until they are complete
        try:
            while True:
                data = upstream.recv(CHUNK)
                if not data:
                    break
                mode = self._mode
                if mode.name == "claim":
                    head += data
                    if b"\r\n\r\n" not in head:
                        continue
                    headers, _, body = head.partition(b"\r\n\r\n")
                    client.sendall(_claimed(headers, mode.claimed) + b"\r\n\r\n")
                    for i in range(len(body)):
                        if self._closed.wait(mode.interval):
                            return
                        client.sendall(body[i : i + 1])
                    self._closed.wait()  # the rest of the "body" never comes
                    return
                if mode.name == "trickle":
                    for i in range(len(data)):
                        if self._closed.wait(mode.interval):
                            return
                        client.sendall(data[i : i + 1])
                elif mode.name != "black_hole":
                    client.sendall(data)
        except OSError:
            pass
        finally:
            self._drop(client, upstream)

    def _note(self, data: bytes) -> None:
        line = data.split(b"\r\n", 1)[0]
        if b" HTTP/1." in line:
            with self._lock:
                self._seen.append(line)

    def _wait_if_held(self, data: bytes) -> None:
        with self._released:
            while not self._closed.is_set() and any(data.startswith(p) for p in self._held):
                self._released.wait(0.1)

    def _drop(self, *sockets: socket.socket) -> None:
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()
            with self._lock:
                self._sockets.discard(sock)


def _claimed(headers: bytes, length: int) -> bytes:
    """HTTP response headers with ``Content-Length`` set to ``length``."""
    lines = [
        line for line in headers.split(b"\r\n") if not line.lower().startswith(b"content-length:")
    ]
    return b"\r\n".join([*lines, b"Content-Length: %d" % length])


@contextlib.contextmanager
def fault_proxy(upstream: str) -> Iterator[FaultProxy]:
    """A ``FaultProxy`` closed (with every connection) at the end of the block."""
    proxy = FaultProxy(upstream)
    try:
        yield proxy
    finally:
        proxy.close()
