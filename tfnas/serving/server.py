"""`tfnas serve`: the WSGI app (`tfnas.serving.app`) served by waitress, with explicit bounds and a graceful stop.

waitress (pure Python, on every OS) rather than Werkzeug's development
server, which has no timeouts and a thread per connection. One loop reads
and writes every connection; a pool of threads runs the requests. The
bounds (`ServerSettings`, and the request limits of
`tfnas.serving.rest.Limits`):

- at most ``threads`` requests run at once; the others wait in a queue;
- at most ``connection_limit`` connections are open; past it no connection
  is accepted (the others wait in the listening socket's backlog) until one
  closes;
- a connection with nothing in progress for ``channel_timeout`` seconds (an
  incomplete request, a body shorter than its Content-Length, an idle
  keep-alive, a reply the client does not read) is closed;
- a body over ``max_request_bytes`` is refused with a 413 as soon as its
  Content-Length or its chunks pass the limit, and a request line and
  headers over `MAX_HEADER_BYTES` with a 431; these answers of waitress's
  own are JSON ``{"error": ...}`` like the app's;
- `HttpServer.stop` (SIGTERM or Ctrl-C under `serve`): no new connection,
  the requests in flight get ``shutdown_grace`` seconds to be answered,
  the rest are closed, and `serve` returns.

waitress's error replies and its loop are reached through its modules
(``waitress.channel``, ``waitress.task``, ``waitress.wasyncore``), not only
``create_server``: its documented API has no hook for either.
"""
from __future__ import annotations

import json
import logging
import signal
import socket
import threading
import time
from dataclasses import dataclass
from typing import Callable

import waitress
from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer
from waitress.task import ErrorTask
from waitress.utilities import Error, RequestEntityTooLarge, RequestHeaderFieldsTooLarge

from tfnas.settings import AT_LEAST_ONE, NON_NEGATIVE, check_argument
from tfnas.errors import TfnasError
from tfnas.export.exported import ExportedModel
from tfnas.serving.app import ServingApp
from tfnas.serving.rest import Limits, body_too_large

logger = logging.getLogger("tfnas.serve")

#: Largest request line plus headers (bytes); a URL counts here.
MAX_HEADER_BYTES = 64 * 2 ** 10
#: How often the serving loop looks whether `HttpServer.stop` was called (seconds).
POLL_SECONDS = 0.2
#: Seconds the requests still running after the shutdown grace get to end with a 503 at their next model call.
CANCEL_SECONDS = 2.0
#: Most bytes a connection being closed reads and drops first (see `_Channel.handle_close`).
LINGER_BYTES = 2 ** 20


class ServeError(TfnasError):
    """The server cannot start: an address that does not resolve, a port in use or not allowed."""


@dataclass(frozen=True)
class ServerSettings:
    """How `HttpServer` treats connections (each a ``tfnas serve`` flag of the same name).

    Attributes:
        threads: requests run at once (waitress's thread pool); the model
            itself runs one call at a time whatever this is.
        connection_limit: connections open at once.
        channel_timeout: seconds after which a connection with nothing in
            progress is closed.
        shutdown_grace: seconds the requests in flight get to be answered
            once the server stops.
    """

    threads: int = 4
    connection_limit: int = 100
    channel_timeout: int = 30
    shutdown_grace: float = 5.0

    def __post_init__(self):
        for name in ("threads", "connection_limit", "channel_timeout"):
            check_argument(name, getattr(self, name), int, AT_LEAST_ONE)
        check_argument("shutdown_grace", self.shutdown_grace, float, NON_NEGATIVE)


def _error_message(error: Error, max_request_body_size: int) -> str:
    """One line for an error that waitress answers itself (``max_request_body_size``: waitress's setting)."""
    if isinstance(error, RequestEntityTooLarge):
        return str(body_too_large(max_request_body_size - 1))  # see HttpServer
    if isinstance(error, RequestHeaderFieldsTooLarge):
        return f"the request line and headers are over this server's limit of {MAX_HEADER_BYTES} bytes"
    return f"{error.reason}: {' '.join(str(error.body).split())}"


class _JsonErrorTask(ErrorTask):
    """waitress's own error replies (a malformed request, a body or headers over the limits) as the app's:
    ``{"error": ...}`` in JSON, and the connection closed."""

    def execute(self) -> None:
        error = self.request.error
        body = json.dumps({"error": _error_message(error, self.channel.adj.max_request_body_size)}).encode()
        self.status = f"{error.code} {error.reason}"
        self.response_headers.append(("Content-Type", "application/json"))
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class _Channel(HTTPChannel):
    """waitress's connection, with JSON error replies, that reads what its client sent before closing."""

    error_task_class = _JsonErrorTask

    def handle_close(self) -> None:
        """Reads and drops the bytes the client sent that nobody will read (the rest of an oversized request),
        up to `LINGER_BYTES`, then closes: a socket closed with unread bytes sends a reset, on which the client's
        system drops the reply (a 413, a 431) it has not read yet."""
        sock = self.socket  # None once closed (waitress may close a channel twice)
        try:
            for _ in range(LINGER_BYTES // self.adj.recv_bytes if sock is not None else 0):
                if not sock.recv(self.adj.recv_bytes):
                    break
        except OSError:  # nothing more to read now (the socket does not block), or a reset
            pass
        super().handle_close()


class HttpServer:
    """A `ServingApp` served by waitress on ``host:port`` (``port=0``: a free port; see `url`).

    `run` serves until `stop` is called (from a signal handler or another
    thread). Raises `ServeError` when it cannot listen on the address.
    """

    def __init__(self, app: ServingApp, host: str = "127.0.0.1", port: int = 8501,
                 settings: ServerSettings = ServerSettings()):
        self.app = app
        self.settings = settings
        self._map: dict = {}
        self._deadline: float | None = None
        self._reason = ""
        try:
            socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
            server = waitress.create_server(
                app, map=self._map, host=host, port=port, ident="tfnas", threads=settings.threads,
                connection_limit=settings.connection_limit, channel_timeout=settings.channel_timeout,
                cleanup_interval=1, max_request_header_size=MAX_HEADER_BYTES,
                # waitress refuses a body of max_request_body_size bytes already; the limit is the largest allowed
                max_request_body_size=app.limits.max_request_bytes + 1,
                asyncore_use_poll=True, expose_tracebacks=False)
        except (OSError, ValueError) as err:
            wasyncore.close_all(self._map)
            reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
            raise ServeError(f"cannot listen on {host} port {port}: {reason}") from None
        self._listeners = [d for d in self._map.values() if isinstance(d, BaseWSGIServer)]
        for listener in self._listeners:
            listener.channel_class = _Channel
        # waitress counts its own sockets (each listener and its wake-up pipe) against the limit.
        server.adj.connection_limit = settings.connection_limit + len(self._map)
        self._tasks = server.task_dispatcher
        first = self._listeners[0]
        host, port = first.effective_host, int(first.effective_port)
        #: The base URL, with the port actually bound.
        self.url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    @property
    def stopping(self) -> bool:
        return self._deadline is not None

    def stop(self, reason: str = "request", grace: float | None = None) -> None:
        """Makes `run` stop: it accepts no new connection, gives the requests in flight ``grace`` seconds
        (``shutdown_grace`` by default) to be answered, closes every connection and returns. Requests that
        start meanwhile get a 503. Safe from a signal handler and from another thread; a second call can only
        shorten the grace."""
        deadline = time.monotonic() + (self.settings.shutdown_grace if grace is None else grace)
        if self._deadline is None:
            self._reason = reason
        if self._deadline is None or deadline < self._deadline:
            self._deadline = deadline

    def run(self) -> None:
        """Serves until `stop`, then stops as it says."""
        try:
            while self._deadline is None:
                wasyncore.loop(timeout=POLL_SECONDS, map=self._map, use_poll=True, count=1)
            self._drain()
        finally:
            self._tasks.shutdown(cancel_pending=True, timeout=CANCEL_SECONDS)  # the idle threads end at once
            wasyncore.close_all(self._map)

    def _drain(self) -> None:
        """Stops accepting, and serves the connections with a request in flight until they are answered or the
        grace ends; then cancels the requests still running (each ends with a 503 at its next model call) and
        serves them `CANCEL_SECONDS` more. Each connection with nothing in flight is closed."""
        self.app.stopping.set()
        for listener in self._listeners:
            wasyncore.dispatcher.close(listener)  # the socket only: the loop still needs the wake-up pipe
        logger.warning("tfnas serve: stopping on %s: %d request(s) in flight, waiting up to %.3g s for them",
                       self._reason, len(self._busy()), max(0.0, self._deadline - time.monotonic()))
        if self._serve_until_idle(lambda: self._deadline):
            return
        self.app.cancelled.set()
        logger.warning("tfnas serve: %d request(s) still running after the grace: cancelled", len(self._busy()))
        cancel_end = time.monotonic() + CANCEL_SECONDS
        if not self._serve_until_idle(lambda: cancel_end):
            logger.warning("tfnas serve: closing %d connection(s) still busy", len(self._busy()))

    def _busy(self) -> list[HTTPChannel]:
        """The connections with a request in flight or a reply not yet sent."""
        return [c for c in self._map.values() if isinstance(c, HTTPChannel) and (c.requests or c.total_outbufs_len)]

    def _serve_until_idle(self, deadline: Callable[[], float]) -> bool:
        """Serves the open connections, closing each as soon as it has nothing in flight, until none is left
        (True) or ``deadline()`` passes (False)."""
        while True:
            busy = self._busy()
            for channel in [c for c in self._map.values() if isinstance(c, HTTPChannel) and c not in busy]:
                channel.handle_close()
            if not busy:
                return True
            if time.monotonic() >= deadline():
                return False
            wasyncore.loop(timeout=0.05, map=self._map, use_poll=True, count=1)


def serve(model: ExportedModel, host: str = "127.0.0.1", port: int = 8501, name: str = "tfnas",
          limits: Limits = Limits(), settings: ServerSettings = ServerSettings(),
          ready: Callable[[str], None] | None = None) -> None:
    """Serves ``model`` until SIGTERM or Ctrl-C (SIGINT), then stops gracefully (`HttpServer.stop`; a second
    signal closes what is left at once) and returns.

    ``ready`` is called with the base URL once the socket listens (the
    port is the one bound, which matters with ``port=0``). Raises
    `ServeError` when it cannot listen on ``host:port``.
    """
    server = HttpServer(ServingApp(model, name, limits), host, port, settings)
    previous = {}
    if threading.current_thread() is threading.main_thread():
        def on_signal(signum: int, frame) -> None:
            server.stop(signal.Signals(signum).name, grace=0 if server.stopping else None)

        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, on_signal)
    if ready is not None:
        ready(server.url)
    try:
        server.run()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
