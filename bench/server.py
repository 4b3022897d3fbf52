"""A fast OpenAI-compatible chat completions server for the benchmark.

One process, one thread, a ``selectors`` loop over non-blocking sockets on 127.0.0.1,
speaking just enough HTTP/1.1: keep-alive, ``Content-Length`` request bodies, pipelined
requests, and chunked Server-Sent Events. ``POST <...>/chat/completions`` answers with the
JSON document or the event stream of :mod:`protocol`; anything else gets 404 or 405.

The part of a stream that does not depend on the request is encoded once per size and
kept, so a stream of 20,000 pieces costs the server a JSON parse of the request and a few
``send`` calls. Each event goes out as its own HTTP chunk by default, as servers that flush
every token do (``--events-per-chunk`` batches them).

Run it as ``python bench/server.py``: it prints ``PORT <n>`` once listening, and stops when
its standard input closes (the parent exited) or after ``--max-seconds``.
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import socket
import sys
import time
from collections import OrderedDict, deque
from typing import Any

import protocol

MAX_HEAD_BYTES = 64 * 1024
MAX_BODY_BYTES = 8 * 1024 * 1024
RECV_SIZE = 256 * 1024
SEND_SIZE = 1024 * 1024
TAIL_CACHE_SIZE = 8


def _frame(payload: bytes) -> bytes:
    """``payload`` as one HTTP/1.1 chunk."""
    return b"%x\r\n%s\r\n" % (len(payload), payload)


def _response_head(status: str, headers: list[tuple[str, str]]) -> bytes:
    lines = [f"HTTP/1.1 {status}", *(f"{k}: {v}" for k, v in headers), "", ""]
    return "\r\n".join(lines).encode("latin-1")


def _error(status: str, message: str) -> bytes:
    """A whole error response with an OpenAI-style JSON body."""
    body = json.dumps({"error": {"message": message, "type": "bench_error"}}).encode()
    head = _response_head(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return head + body


class Answers:
    """Builds the bytes of each answer, keeping the request-independent part of streams."""

    def __init__(self, events_per_chunk: int = 1) -> None:
        self.events_per_chunk = max(1, events_per_chunk)
        self._tails: OrderedDict[tuple[int, str], bytes] = OrderedDict()

    def _framed(self, events: list[bytes]) -> bytes:
        step = self.events_per_chunk
        return b"".join(_frame(b"".join(events[i : i + step])) for i in range(0, len(events), step))

    def tail(self, pieces: int, model: str) -> bytes:
        """Pieces 1..n-1, the finish chunk, ``[DONE]`` and the last chunk, framed."""
        key = (pieces, model)
        found = self._tails.get(key)
        if found is None:
            found = self._framed(protocol.tail_events(pieces, model)) + b"0\r\n\r\n"
            self._tails[key] = found
            while len(self._tails) > TAIL_CACHE_SIZE:
                self._tails.popitem(last=False)
        else:
            self._tails.move_to_end(key)
        return found

    def answer(self, path: str, method: str, body: bytes) -> tuple[list[bytes], bool]:
        """The bytes to send for one request, and whether it was understood (a bad
        request closes the connection after the answer)."""
        if not path.split("?", 1)[0].rstrip("/").endswith("/chat/completions"):
            return [_error("404 Not Found", "not found")], True
        if method != "POST":
            return [_error("405 Method Not Allowed", "use POST")], True
        try:
            request: Any = json.loads(body)
            nonce = request["messages"][-1]["content"]
            model = request.get("model") or protocol.MODEL
            if not isinstance(nonce, str) or not isinstance(model, str):
                raise TypeError("nonce and model must be strings")
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            return [_error("400 Bad Request", f"bad request: {exc}")], False
        if request.get("stream"):
            pieces = request.get("max_tokens") or protocol.DEFAULT_PIECES
            if not isinstance(pieces, int) or not 1 <= pieces <= protocol.MAX_PIECES:
                return [_error("400 Bad Request", "max_tokens out of range")], False
            head = _response_head(
                "200 OK",
                [
                    ("Content-Type", "text/event-stream; charset=utf-8"),
                    ("Cache-Control", "no-cache"),
                    ("Transfer-Encoding", "chunked"),
                ],
            )
            first = self._framed(protocol.head_events(nonce, model))
            return [head + first, self.tail(pieces, model)], True
        document = protocol.completion_document(nonce, model)
        head = _response_head(
            "200 OK",
            [("Content-Type", "application/json"), ("Content-Length", str(len(document)))],
        )
        return [head + document], True


class _Connection:
    """One client connection: what came in and is not yet answered, and what is still to
    be sent."""

    __slots__ = ("close_after", "inbuf", "out", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.inbuf = bytearray()
        self.out: deque[memoryview] = deque()
        self.close_after = False


class Server:
    """The event loop. :meth:`serve` runs until the stop pipe reaches its end or the
    deadline passes."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, events_per_chunk: int = 1):
        self.answers = Answers(events_per_chunk)
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((host, port))
        self.listener.listen(512)
        self.listener.setblocking(False)
        self.selector = selectors.DefaultSelector()
        self.requests = 0

    @property
    def port(self) -> int:
        port: int = self.listener.getsockname()[1]
        return port

    def serve(self, stop_fd: int | None, max_seconds: float) -> None:
        sel = self.selector
        sel.register(self.listener, selectors.EVENT_READ, None)
        if stop_fd is not None:
            sel.register(stop_fd, selectors.EVENT_READ, "stop")
        deadline = time.monotonic() + max_seconds
        try:
            while time.monotonic() < deadline:
                for key, mask in sel.select(timeout=1.0):
                    data = key.data
                    if data is None:
                        self._accept()
                    elif data == "stop":
                        if not _still_open(stop_fd):
                            return
                    else:
                        if mask & selectors.EVENT_READ:
                            self._read(data)
                        if mask & selectors.EVENT_WRITE and data.sock.fileno() != -1:
                            self._flush(data)
        finally:
            for key in list(sel.get_map().values()):
                if isinstance(key.data, _Connection):
                    key.data.sock.close()
            sel.close()
            self.listener.close()

    def _accept(self) -> None:
        for _ in range(64):  # bounded: the rest wait for the next round
            try:
                sock, _addr = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.selector.register(sock, selectors.EVENT_READ, _Connection(sock))

    def _close(self, conn: _Connection) -> None:
        try:
            self.selector.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        conn.sock.close()

    def _read(self, conn: _Connection) -> None:
        try:
            data = conn.sock.recv(RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(conn)
            return
        if not data:
            self._close(conn)
            return
        conn.inbuf += data
        self._handle(conn)
        self._flush(conn)

    def _reject(self, conn: _Connection, status: str, message: str) -> None:
        conn.out.append(memoryview(_error(status, message)))
        conn.close_after = True

    def _handle(self, conn: _Connection) -> None:
        """Answer every whole request in the connection's buffer."""
        buf = conn.inbuf
        while not conn.close_after:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HEAD_BYTES:
                    self._reject(conn, "431 Request Header Fields Too Large", "head too large")
                return
            lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
            parts = lines[0].split(" ")
            if len(parts) != 3:
                self._reject(conn, "400 Bad Request", "bad request line")
                return
            method, path, version = parts
            headers: dict[str, str] = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            if "chunked" in headers.get("transfer-encoding", "").lower():
                self._reject(conn, "411 Length Required", "send a Content-Length")
                return
            try:
                length = int(headers.get("content-length", "0"))
            except ValueError:
                length = -1
            if not 0 <= length <= MAX_BODY_BYTES:
                self._reject(conn, "400 Bad Request", "bad Content-Length")
                return
            if len(buf) < end + 4 + length:
                return
            body = bytes(buf[end + 4 : end + 4 + length])
            del buf[: end + 4 + length]
            self.requests += 1
            pieces, understood = self.answers.answer(path, method, body)
            conn.out.extend(memoryview(p) for p in pieces)
            connection = headers.get("connection", "").lower()
            if not understood or connection == "close" or version == "HTTP/1.0":
                conn.close_after = True

    def _flush(self, conn: _Connection) -> None:
        out = conn.out
        sock = conn.sock
        for _ in range(64):  # bounded: a slow reader waits for the next round
            if not out:
                break
            view = out[0]
            try:
                sent = sock.send(view[:SEND_SIZE])
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self._close(conn)
                return
            if sent == len(view):
                out.popleft()
            else:
                out[0] = view[sent:]
        if not out and conn.close_after:
            self._close(conn)
            return
        want = selectors.EVENT_READ | (selectors.EVENT_WRITE if out else 0)
        if self.selector.get_key(conn.sock).events != want:
            self.selector.modify(conn.sock, want, conn)


def _still_open(fd: int | None) -> bool:
    """Whether the stop pipe is still open (readable means its end, or a stray byte)."""
    if fd is None:
        return True
    try:
        return bool(os.read(fd, 1024))
    except OSError:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A fast OpenAI-compatible bench server.")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--events-per-chunk", type=int, default=1)
    parser.add_argument("--max-seconds", type=float, default=4 * 3600)
    parser.add_argument(
        "--no-stdin-stop", action="store_true", help="do not stop when standard input closes"
    )
    args = parser.parse_args(argv)
    server = Server(port=args.port, events_per_chunk=args.events_per_chunk)
    print(f"PORT {server.port}", flush=True)
    stop_fd = None if args.no_stdin_stop else sys.stdin.fileno()
    server.serve(stop_fd, args.max_seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
