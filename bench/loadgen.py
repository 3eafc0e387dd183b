"""A small HTTP/1.1 load generator (asyncio, keep-alive): the fallback when wrk is missing, and the
generator for requests that must each be sent once (signed payment notifications).

    loadgen.py --requests FILE [--once] --seconds S --connections C

FILE holds raw requests separated by NUL bytes (bench/common.py write_requests).
Cycles through them for S seconds, or sends each once (stopping early when all
are answered). Prints one JSON line: requests, seconds, p50_ms, p99_ms, errors.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = 0
    chunked = False
    close = False
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value.strip())
        elif name == "transfer-encoding" and "chunked" in value.lower():
            chunked = True
        elif name == "connection" and value.strip().lower() == "close":
            close = True
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return status, close


async def _connection(
    host: str, port: int, requests: list[bytes], state: dict, deadline: float, once: bool, latencies: list[float]
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.monotonic() < deadline:
            i = state["next"]
            if once and i >= len(requests):
                return
            state["next"] = i + 1
            request = requests[i % len(requests)]
            started = time.perf_counter()
            try:
                writer.write(request)
                status, close = await _read_response(reader)
            except (OSError, asyncio.IncompleteReadError, ValueError):
                state["errors"] += 1
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
                continue
            latencies.append(time.perf_counter() - started)
            state["last"] = time.monotonic()
            if not 200 <= status < 300:
                state["errors"] += 1
            if close:
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
    finally:
        writer.close()


async def main(args: argparse.Namespace) -> dict:
    requests = [r for r in Path(args.requests).read_bytes().split(b"\0") if r]
    state = {"next": 0, "errors": 0, "last": 0.0}
    latencies: list[float] = []
    started = time.monotonic()
    deadline = started + args.seconds
    await asyncio.gather(
        *(
            _connection(args.host, args.port, requests, state, deadline, args.once, latencies)
            for _ in range(args.connections)
        )
    )
    elapsed = (state["last"] or time.monotonic()) - started
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(len(latencies) * p))] * 1000 if latencies else 0.0

    return {
        "requests": len(latencies),
        "seconds": elapsed,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "errors": state["errors"],
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--requests", required=True)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--once", action="store_true")
    print(json.dumps(asyncio.run(main(parser.parse_args()))))
