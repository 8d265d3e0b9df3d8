"""Helpers of the serving tests: `tfnas serve` over an export on a free port of 127.0.0.1, in a thread of the test
process (`running`) or as the command (`ServeProcess`), HTTP requests to it (`call`, `exchange`), and the
SignatureDefs of a SavedModel export as TensorFlow Serving's JSON (`saved_signature_defs`).

Importable as ``serving_support`` because pytest puts ``tests/`` on ``sys.path``.
"""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence
from urllib.parse import urlsplit

from tfnas.export import ExportedModel
from tfnas.serving import HttpServer, Limits, ServerSettings, ServingApp

#: Longest wait of any request of the tests (seconds): a bound on every loop, far above what any request takes.
PATIENCE = 60


@contextmanager
def running(model: ExportedModel, limits: Limits = Limits(), settings: ServerSettings = ServerSettings(),
            name: str = "ptb") -> Iterator[str]:
    """The base URL of a server over ``model`` running in a thread until the block ends."""
    server = HttpServer(ServingApp(model, name, limits), "127.0.0.1", 0, settings)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield server.url
    finally:
        server.stop(grace=0)
        thread.join(PATIENCE)
        assert not thread.is_alive(), "the server did not stop"


def call(url: str, body: Any = None, raw: bytes | None = None, method: str | None = None,
         timeout: float = PATIENCE) -> tuple[int, Any]:
    """(status, JSON reply) of a GET (no body) or a POST."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as err:
        assert err.headers.get_content_type() == "application/json", err.read()[:200]
        return err.code, json.loads(err.read())


def address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname, parts.port


def exchange(url: str, data: bytes | Sequence[bytes], timeout: float = PATIENCE) -> bytes:
    """Everything the server sends back on one connection after ``data`` (one piece or several, sent in order),
    until it closes the connection; `TimeoutError` if it sends nothing for ``timeout`` seconds."""
    pieces = [data] if isinstance(data, bytes) else data
    with socket.create_connection(address(url), timeout=timeout) as conn:
        for piece in pieces:
            conn.sendall(piece)
        return read_until_closed(conn)


def read_until_closed(conn: socket.socket) -> bytes:
    """What the server sends on ``conn`` until it closes it."""
    received = []
    while chunk := conn.recv(1 << 16):
        received.append(chunk)
    return b"".join(received)


def status_and_json(reply: bytes) -> tuple[int, Any]:
    """The status and the JSON body of a raw HTTP/1.1 reply with a Content-Length."""
    head, _, body = reply.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    assert headers.get("Content-Type") == "application/json", head
    return int(lines[0].split()[1]), json.loads(body)


class ServeProcess:
    """``tfnas serve`` run as a command (``python -m tfnas.cli serve ARGS --port 0``): its base URL once it
    listens; `stop` sends a signal and returns the exit status."""

    def __init__(self, args: Sequence[str]):
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
        self.proc = subprocess.Popen([sys.executable, "-m", "tfnas.cli", "serve", *args, "--port", "0"],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        line = self.proc.stdout.readline()
        match = re.search(r"at (http://127\.0\.0\.1:\d+)", line)
        if match is None:
            self.proc.kill()
            raise AssertionError(f"tfnas serve did not start: {line!r} {self.proc.stderr.read()}")
        self.url = match.group(1)

    def stop(self, signum: int = signal.SIGTERM) -> int:
        self.proc.send_signal(signum)
        return self.proc.wait(timeout=PATIENCE)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()
        self.proc.stderr.close()


#: The SignatureDef of a SavedModel's initialisation (the tables' and variables'), which no request can call.
INIT_OP = "__saved_model_init_op"


def saved_signature_defs(folder: Path) -> dict:
    """The SignatureDefs of the ``serve`` graph of the SavedModel in ``folder`` as protobuf's JSON with every
    field printed, without the init op's and without each signature's ``defaults`` (the zero states)."""
    from google.protobuf import json_format
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel()
    saved.ParseFromString((folder / "saved_model.pb").read_bytes())
    (graph,) = [g for g in saved.meta_graphs if list(g.meta_info_def.tags) == ["serve"]]
    defs = {}
    for key, signature in graph.signature_def.items():
        if key == INIT_OP:
            continue
        try:
            as_json = json_format.MessageToDict(signature, preserving_proto_field_name=True,
                                                always_print_fields_with_no_presence=True)
        except TypeError:  # protobuf before 5.26
            as_json = json_format.MessageToDict(signature, preserving_proto_field_name=True,
                                                including_default_value_fields=True)
        as_json.pop("defaults", None)
        defs[key] = as_json
    return defs
