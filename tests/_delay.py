"""A TCP proxy on 127.0.0.1 that holds every byte a fixed time in each direction: Redis
``delay`` seconds away without root tricks (no ``tc netem``), for the tests of what a slow
Redis does to the gateway, and for ``bench/state.py --delays`` (run as
``python -m tests._delay --to PORT --delay SECONDS``, it prints its port and serves until
killed).

Each chunk read from one side is written to the other ``delay`` seconds after it was read,
in order; a side that closes is closed on the other side after the same delay. The proxy
runs its own event loop on a thread of its own (:meth:`DelayProxy.start`), so that the
process that uses it may block.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import threading
from typing import Any

__all__ = ["DelayProxy"]


class DelayProxy:
    """Forwards ``127.0.0.1:port`` to ``127.0.0.1:target``, ``delay`` seconds each way."""

    def __init__(self, target: int, delay: float) -> None:
        self.target = target
        self.delay = delay
        self.port = 0
        self.connections = 0
        """Connections accepted so far."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped: asyncio.Event | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> DelayProxy:
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name="delay-proxy", daemon=True
        )
        self._thread.start()
        if not ready.wait(10) or not self.port:
            raise RuntimeError("the delaying proxy did not start")
        return self

    def stop(self) -> None:
        loop, stopped = self._loop, self._stopped
        if loop is not None and stopped is not None and self._thread is not None:
            loop.call_soon_threadsafe(stopped.set)
            self._thread.join(10)
        self._loop = self._thread = None

    def __enter__(self) -> DelayProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run(self, ready: threading.Event) -> None:
        asyncio.run(self._serve(ready))

    async def _serve(self, ready: threading.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        ready.set()
        async with server:
            await self._stopped.wait()
            server.close()
            for writer in list(self._writers):
                writer.close()
            await server.wait_closed()

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            server_r, server_w = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            client_w.close()
            return
        self._writers.update((client_w, server_w))
        try:
            await asyncio.gather(self._pipe(client_r, server_w), self._pipe(server_r, client_w))
        except (OSError, asyncio.CancelledError):
            pass  # a reset, or the proxy stopping: both sides are closed below
        finally:
            self._writers.difference_update((client_w, server_w))
            for writer in (client_w, server_w):
                writer.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        # One queue and one sender per direction: bytes leave in the order they came, each
        # chunk ``delay`` after it was read.
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def send() -> None:
            while True:
                due, data = await queue.get()
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()

        sender = loop.create_task(send())
        try:
            while True:
                try:
                    data = await reader.read(65536)
                except OSError:
                    data = b""
                queue.put_nowait((loop.time() + self.delay, data))
                if not data:
                    break
            await sender
        except (OSError, asyncio.CancelledError):
            sender.cancel()
            raise
        finally:
            if not sender.done():
                sender.cancel()
                with contextlib.suppress(BaseException):
                    await sender


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="a TCP proxy that delays each direction")
    parser.add_argument("--to", type=int, required=True, help="the port on 127.0.0.1 to reach")
    parser.add_argument("--delay", type=float, required=True, help="seconds each way")
    args = parser.parse_args(argv)
    proxy = DelayProxy(args.to, args.delay).start()
    print(proxy.port, flush=True)
    forever: Any = threading.Event()
    try:
        forever.wait()
    except KeyboardInterrupt:
        pass
    finally:
        proxy.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
