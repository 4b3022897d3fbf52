"""A real ``redis-server`` for the shared-state tests: started on a free loopback port, with
nothing saved to disk, and stopped, paused or restarted on the same port when a test asks;
and a Redis Cluster of three such servers (:class:`RedisClusterServers`).

No fake Redis: a test of what crosses processes needs the real server's atomicity.
``.ci/run`` installs the Debian package when the machine lacks it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence

import pytest

redis = pytest.importorskip("redis")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def binary() -> str:
    """The ``redis-server`` to run; a skip (a failure on CI) when there is none."""
    found = shutil.which("redis-server")
    if found is None:
        message = "redis-server is not installed (apt-get install redis-server)"
        if os.environ.get("CI"):
            pytest.fail(message + ": .ci/run installs it")
        pytest.skip(message)
    return found


class RedisServer:
    """One ``redis-server`` process on 127.0.0.1:``port``."""

    def __init__(self, port: int | None = None, extra: Sequence[str] = ()) -> None:
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.extra = list(extra)
        """More ``redis-server`` options, such as ``--cluster-enabled yes``."""
        self._dir = tempfile.mkdtemp(prefix="providerhub-redis-")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisServer:
        self.process = subprocess.Popen(
            [
                binary(),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self._dir,
                "--protected-mode",
                "yes",
                *self.extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited at once ({self.process.returncode})")
            if self.ping():
                return self
            time.sleep(0.01)
        self.kill()
        raise RuntimeError("redis-server did not answer within 10 s")

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                # A server with a password answers, if only to refuse: it is up.
                return sock.recv(16).startswith((b"+PONG", b"-NOAUTH"))
        except OSError:
            return False

    def kill(self) -> None:
        """Kill it outright, as a crash would."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None

    def pause(self) -> None:
        """Freeze it: connections stay open, and commands get no answer (a slow Redis)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)  # a paused one cannot take SIGTERM
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
            self.process = None
        shutil.rmtree(self._dir, ignore_errors=True)

    def client(self) -> redis.Redis:
        """A client of its own, to look at the keys the code under test wrote."""
        return redis.Redis.from_url(self.url, socket_timeout=5)


class RedisClusterServers:
    """A Redis Cluster of ``masters`` ``redis-server`` processes on free loopback ports, no
    replicas, every slot assigned (``redis-cli --cluster create``); :attr:`url` names one
    node, with ``?cluster=true``."""

    def __init__(self, masters: int = 3) -> None:
        self.nodes = [
            RedisServer(
                extra=[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",  # in the node's own --dir
                    "--cluster-node-timeout",
                    "2000",
                    # The bus port is the port + 10000 unless given: past 65535 for half
                    # the free ports.
                    "--cluster-port",
                    str(free_port()),
                ]
            )
            for _ in range(masters)
        ]
        self.url = f"redis://127.0.0.1:{self.nodes[0].port}?cluster=true"

    def start(self) -> RedisClusterServers:
        try:
            for node in self.nodes:
                node.start()
            cli = shutil.which("redis-cli")
            if cli is None:
                pytest.skip("redis-cli is not installed (apt-get install redis-tools)")
            subprocess.run(
                [
                    cli,
                    "--cluster",
                    "create",
                    *(f"127.0.0.1:{node.port}" for node in self.nodes),
                    "--cluster-replicas",
                    "0",
                    "--cluster-yes",
                ],
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                timeout=30,
            )
            deadline = time.monotonic() + 10
            while not all(self._ready(node) for node in self.nodes):
                if time.monotonic() > deadline:
                    raise RuntimeError("the Redis Cluster did not come up within 10 s")
                time.sleep(0.02)
        except BaseException:
            self.stop()
            raise
        return self

    @staticmethod
    def _ready(node: RedisServer) -> bool:
        """Whether ``node`` says that every slot is served."""
        with redis.Redis(port=node.port, socket_timeout=5) as client:
            info = client.cluster("INFO")  # parsed into a dict of strings
        return bool(info["cluster_state"] == "ok" and info["cluster_slots_ok"] == "16384")

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def flushall(self) -> None:
        for node in self.nodes:
            with node.client() as client:
                client.flushall()

    def node_of(self, key: str) -> RedisServer:
        """The node that holds ``key``'s slot."""
        with self.nodes[0].client() as client:
            slot = int(client.cluster("KEYSLOT", key))
            for first, last, (_host, port, *_rest) in client.cluster("SLOTS"):
                if first <= slot <= last:
                    return next(node for node in self.nodes if node.port == port)
        raise AssertionError(f"no node serves slot {slot}")
