"""Connections to `tfnas serve` over real HTTP on 127.0.0.1 (issue 26 items 4, 5 and 7): incomplete and idle
connections are closed after the channel timeout, a body over the size limit gets a 413 whatever its framing, the
errors the HTTP layer answers itself are JSON, SIGTERM answers the requests in flight within a grace and stops,
and an address that cannot be listened on is a one-line error naming it."""
import errno
import http.client
import json
import os
import signal
import socket
import threading
import time

import pytest

from tfnas import cli
from tfnas.serving import Limits, ServerSettings

from serving_support import (PATIENCE, ServeProcess, address, call, exchange, read_until_closed, running,
                             status_and_json)


def request_head(path: str, *headers: str) -> bytes:
    return "\r\n".join([f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json",
                        "Connection: close", *headers, "", ""]).encode()


def chunked(body: bytes, wire_bytes: int) -> bytes:
    """``body`` padded with spaces and sent as one HTTP/1.1 chunk and the last chunk, in ``wire_bytes`` bytes."""
    for size in range(len(body), wire_bytes):
        encoded = b"%x\r\n%s\r\n0\r\n\r\n" % (size, body.ljust(size))
        if len(encoded) == wire_bytes:
            return encoded
    raise ValueError(f"no chunk of {wire_bytes} bytes holds {len(body)} bytes")


def test_a_body_shorter_than_its_content_length_is_closed_after_the_channel_timeout(onnx_model):
    with running(onnx_model, settings=ServerSettings(channel_timeout=1)) as base:
        start = time.monotonic()
        reply = exchange(base, request_head("/v1/models/ptb:predict", "Content-Length: 100") + b'{"inputs"')
        waited = time.monotonic() - start
        assert reply == b"" and 1 <= waited < 10
        assert call(f"{base}/healthz") == (200, {"status": "ok"})


def test_idle_connections_over_the_connection_limit_wait_and_are_closed(onnx_model):
    """The 148 idle partial requests of the issue, scaled down: 8 against a limit of 4 connections. The server
    holds 4 at a time (a request behind them is not accepted meanwhile), closes each after the channel timeout,
    and then answers the request behind them."""
    with running(onnx_model, settings=ServerSettings(connection_limit=4, channel_timeout=2)) as base:
        idle = [socket.create_connection(address(base), timeout=PATIENCE) for _ in range(8)]
        try:
            for conn in idle:
                conn.sendall(b"POST /v1/models/ptb:predict HTTP/1.1\r\nContent-Le")
            with pytest.raises(OSError):  # waits unaccepted behind the idle connections: the client times out
                call(f"{base}/healthz", timeout=1)
            assert call(f"{base}/healthz") == (200, {"status": "ok"})
            assert all(conn.recv(1) == b"" for conn in idle)
        finally:
            for conn in idle:
                conn.close()


def test_requests_run_on_a_bounded_pool_of_threads(onnx_model):
    """12 generations sent at once on 12 connections run on the 2 threads of the pool (and the one serving loop);
    no thread is started per connection."""
    before = threading.active_count()
    with running(onnx_model, settings=ServerSettings(threads=2)) as base:
        assert threading.active_count() == before + 1 + 2
        body = json.dumps({"prompt": "w3", "max_tokens": 100}).encode()
        conns = [socket.create_connection(address(base), timeout=PATIENCE) for _ in range(12)]
        for conn in conns:
            conn.sendall(request_head("/v1/models/ptb:generate", f"Content-Length: {len(body)}") + body)
        most, replies = 0, []
        for conn in conns:
            most = max(most, threading.active_count())
            replies.append(status_and_json(read_until_closed(conn)))
            conn.close()
        assert [status for status, _ in replies] == [200] * 12 and most == before + 1 + 2


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_body_over_the_size_limit_gets_413(onnx_model, framing):
    """A body of exactly the limit is read; one byte more is refused with the limit named, before the app reads it
    (for a chunked body too, whose chunk headers count, and which was read to 64 MiB and then refused as bad
    JSON)."""
    body = json.dumps({"inputs": {"ids": [[1, 2, 3]]}}).encode()

    def send(wire_bytes: int) -> tuple[int, dict]:
        if framing == "chunked":
            head, data = request_head("/v1/models/ptb:predict", "Transfer-Encoding: chunked"), chunked(body, wire_bytes)
        else:
            data = body.ljust(wire_bytes)
            head = request_head("/v1/models/ptb:predict", f"Content-Length: {len(data)}")
        return status_and_json(exchange(base, head + data))

    with running(onnx_model, Limits(max_request_bytes=1000)) as base:
        status, reply = send(1000)
        assert status == 200 and "logits" in reply["outputs"]
        assert send(1001) == (413, {"error": "the request body is over this server's limit of 1000 bytes "
                                             "(tfnas serve --max-request-bytes)"})
        if framing == "content-length":  # refused on its headers, before any of the body is sent
            head = request_head("/v1/models/ptb:predict", "Content-Length: 100000")
            assert status_and_json(exchange(base, head))[0] == 413


def test_a_url_or_headers_over_the_limit_get_a_json_431(onnx_model):
    with running(onnx_model) as base:
        long_url = f"GET /v1/models/ptb?{'a' * 70_000} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
        long_header = f"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Long: {'a' * 70_000}\r\n\r\n".encode()
        for request in (long_url, long_header):
            status, reply = status_and_json(exchange(base, request))
            assert status == 431 and reply["error"].startswith("the request line and headers are over this "
                                                               "server's limit of 65536 bytes")
        status, reply = status_and_json(exchange(base, b"NONSENSE\r\n\r\n"))
        assert status == 400 and "\n" not in reply["error"]


def test_sigterm_answers_the_requests_in_flight_within_the_grace_and_stops(runs):
    """``tfnas serve`` as a user runs it: it prints where it listens and answers. On SIGTERM it stops accepting,
    answers a generation in flight that ends within the grace, ends one that would not with a 503 at its next
    step, and exits with status 0 after the grace, not after the long request."""
    serve = ServeProcess(["--model", str(runs.exports("darts_v2") / "onnx"), "--name", "ptb",
                          "--max-tokens", "2000000", "--shutdown-grace", "5"])
    try:
        status, reply = call(f"{serve.url}/v1/models/ptb:predict", {"inputs": {"ids": [[1, 2, 3]]}})
        assert status == 200 and len(reply["outputs"]["logits"][0]) == 3
        generate = f"{serve.url}/v1/models/ptb:generate"
        # A generation that takes about half a second alone here (its length doubled until it does).
        words = 50
        while True:
            start = time.monotonic()
            assert call(generate, {"prompt": "w3", "max_tokens": words})[0] == 200
            alone = time.monotonic() - start
            if alone > 0.5 or words > 100_000:
                break
            words *= 2
        replies: dict[str, object] = {}

        def ask(key: str, max_tokens: int) -> None:
            try:
                replies[key] = call(generate, {"prompt": "w3", "max_tokens": max_tokens})
            except (OSError, http.client.HTTPException) as err:
                replies[key] = err

        threads = [threading.Thread(target=ask, args=("short", words)),
                   threading.Thread(target=ask, args=("endless", 1_000_000))]
        for thread in threads:
            thread.start()
        time.sleep(alone / 4)
        assert not replies, "the short generation ended before SIGTERM"
        start = time.monotonic()
        assert serve.stop(signal.SIGTERM) == 0
        stopped = time.monotonic() - start
        for thread in threads:
            thread.join(PATIENCE)
        stderr = serve.proc.stderr.read()
    finally:
        serve.close()
    status, reply = replies["short"]
    assert status == 200 and len(reply["ids"]) == words
    assert replies["endless"] == (503, {"error": "the server stopped before this request ended; send it again to "
                                                 "a running server"})
    assert 5 <= stopped < 5 + 10, stopped
    assert "stopping on SIGTERM" in stderr, stderr
    with pytest.raises(OSError):
        socket.create_connection(address(serve.url), timeout=5).close()


def test_an_address_that_cannot_be_listened_on_is_one_line_naming_it(runs, capsys):
    model = str(runs.exports("darts_v2") / "onnx")
    assert cli.main(["serve", "--model", model, "--host", "999.1.1.1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tfnas: error: cannot listen on 999.1.1.1 port 8501: ") and err.count("\n") == 1, err
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert cli.main(["serve", "--model", model, "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert err == f"tfnas: error: cannot listen on 127.0.0.1 port {port}: {os.strerror(errno.EADDRINUSE)}\n", err


def test_the_serve_flags_default_to_the_library_defaults():
    args = cli.build_parser(["serve"]).parse_args(["serve", "--model", "m"])
    limits, settings = Limits(), ServerSettings()
    assert (args.max_batch, args.max_tokens, args.max_reply_values, args.max_request_bytes) == (
        limits.max_batch, limits.max_tokens, limits.max_reply_values, limits.max_request_bytes)
    assert (args.threads, args.connection_limit, args.channel_timeout, args.shutdown_grace) == (
        settings.threads, settings.connection_limit, settings.channel_timeout, settings.shutdown_grace)


@pytest.mark.parametrize("flag, value, expected", [
    ("--threads", "0", "a positive integer"), ("--connection-limit", "0", "a positive integer"),
    ("--channel-timeout", "0", "a positive integer"), ("--shutdown-grace", "-1", "a number >= 0"),
    ("--max-reply-values", "0", "a positive integer"), ("--max-request-bytes", "0", "a positive integer"),
])
def test_a_serve_flag_out_of_range_exits_2_naming_it(flag, value, expected, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["serve", "--model", "m", flag, value])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == \
        f"tfnas: error: argument {flag}: must be {expected}; received: {value!r} (see tfnas serve --help)"

