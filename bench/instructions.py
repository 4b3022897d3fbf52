"""The gateway's instructions per request: ``providerhub serve`` under valgrind's callgrind,
counted over a fixed number of requests, for a figure that the machine's load does not move.

On 2 cores shared with other work, requests/s and CPU time per request move by a quarter
from one run to the next; the instructions a worker runs per request move by well under
1%. This starts the bench upstream and one gateway worker under callgrind, sends
``--requests`` requests over ``--connections`` keep-alive connections (whole answers, or
streams of ``--pieces`` pieces; every answer checked for its status), zeroes the count
after a warm-up, and prints the worker's instructions per request. ``--tree`` runs the
providerhub of another source tree (say a ``git worktree`` of an older commit) with this
environment's packages, to compare two versions::

    .venv/bin/python bench/instructions.py --kind whole
    .venv/bin/python bench/instructions.py --kind stream --pieces 16 --tree ../before

Needs ``valgrind`` (``apt-get install valgrind``). About 40 s a run: the worker runs some
50 times slower under callgrind, so the batching of a stream's events differs from a run
at full speed; compare figures of this script with each other only.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def _serve(tree: str, argv: list[str]) -> int:
    """Run ``providerhub`` with ``argv`` from the source tree ``tree``: the editable
    install's finder is taken out, so that ``tree`` is imported rather than this one."""
    sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
    sys.path.insert(0, tree)
    from providerhub._cli import main

    return main(argv)


def _client(port: int, request: bytes, count: int, stream: bool) -> None:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        for _ in range(count):
            sock.sendall(request)
            buf = b""
            while True:
                data = sock.recv(65536)
                if not data:
                    raise RuntimeError("the gateway closed the connection")
                buf += data
                head, sep, body = buf.partition(b"\r\n\r\n")
                if not sep:
                    continue
                if stream:
                    if buf.endswith(b"0\r\n\r\n"):
                        break
                    continue
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                if len(body) >= length:
                    break
            if not buf.startswith(b"HTTP/1.1 200 "):
                raise RuntimeError(f"the gateway answered {buf[:60]!r}")


def main() -> int:
    if len(sys.argv) > 2 and sys.argv[1] == "--serve":
        return _serve(sys.argv[2], sys.argv[3:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kind", choices=("whole", "stream"), default="whole")
    parser.add_argument("--pieces", type=int, default=16, help="pieces of each stream")
    parser.add_argument("--requests", type=int, default=400, help="requests counted")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--tree", default=str(ROOT), help="the source tree to run")
    args = parser.parse_args()

    sys.path.insert(0, str(HERE))
    import gateway
    import protocol

    stream = args.kind == "stream"
    work = Path(tempfile.mkdtemp(prefix="providerhub-instructions-"))
    counts = work / "callgrind.out"
    script = work / "providerhub"
    # start_gateway runs "<script> serve ...": this script, under callgrind, with --serve.
    script.write_text(
        "#!/bin/sh\nexec valgrind --tool=callgrind --dump-instr=no "
        f"--callgrind-out-file={counts} {sys.executable} {Path(__file__).resolve()} "
        f'--serve {Path(args.tree).resolve()} "$@" 2>{work}/valgrind.log\n'
    )
    script.chmod(0o755)
    wait_ready = gateway.wait_ready
    gateway.wait_ready = lambda url, proc, seconds: wait_ready(url, proc, 300)  # type: ignore[assignment]
    upstream, port = gateway.start_upstream([str(HERE / "server.py")])
    proc = None
    try:
        proc, base, _ = gateway.start_gateway(work, port, port, script=script)
        gateway_port = int(base.rsplit(":", 1)[1])
        body = json.dumps(
            protocol.request_body("x", stream=stream, pieces=args.pieces if stream else None)
        ).encode()
        request = (
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: bench\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        )

        def batch(each: int) -> None:
            threads = [
                threading.Thread(target=_client, args=(gateway_port, request, each, stream))
                for _ in range(args.connections)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()

        batch(10)  # warm: connections, caches
        time.sleep(0.5)
        subprocess.run(
            ["callgrind_control", "--zero", str(proc.pid)], check=True, capture_output=True
        )
        each = args.requests // args.connections
        batch(each)
        subprocess.run(
            ["callgrind_control", "--dump", str(proc.pid)], check=True, capture_output=True
        )
        deadline = time.monotonic() + 60
        dumps: list[Path] = []
        while not dumps and time.monotonic() < deadline:
            dumps = [p for p in work.glob("callgrind.out.*") if p.stat().st_size]
            time.sleep(0.2)
        total = None
        for line in dumps[0].read_text().splitlines():
            if line.startswith(("summary:", "totals:")):
                total = int(line.split()[1])
        if total is None:
            raise RuntimeError(f"no count in {dumps[0]}")
        what = f"{args.pieces}-piece streams" if stream else "whole answers"
        print(
            f"{Path(args.tree).resolve().name}: {total / (each * args.connections) / 1000:,.0f}k "
            f"instructions a request ({what}, {each * args.connections} requests over "
            f"{args.connections} connections)"
        )
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(120)
        gateway.stop(upstream)
    return 0


if __name__ == "__main__":
    sys.exit(main())
