"""A POS load generator (standard library only): one connection per transaction, like a real POS.

python bench/loadgen.py PORT closed --concurrency 32 --seconds 3
python bench/loadgen.py PORT burst --concurrency 500
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import time

REQUEST = b"CZ0040300CJ012012345678901CA00201CE003978BA0010CD0010CB00511245"
LAST_TAGS = (b"AE", b"AF", b"CG")  # the last record of every answer shape of the simulator and the bare answerer


def answer_is_whole(data: bytes) -> bool:
    offset = last = 0
    while offset + 5 <= len(data):
        last = offset
        offset += 5 + int(data[offset + 2 : offset + 5])
    return offset == len(data) and data[last : last + 2] in LAST_TAGS


async def transaction(loop: asyncio.AbstractEventLoop, port: int) -> float:
    """One payment on a new connection; returns its latency in seconds."""
    started = time.perf_counter()
    sock = socket.socket()
    sock.setblocking(False)
    try:
        await loop.sock_connect(sock, ("127.0.0.1", port))
        await loop.sock_sendall(sock, REQUEST)
        answer = b""
        while not answer_is_whole(answer):
            data = await loop.sock_recv(sock, 65536)
            if not data:
                raise ConnectionError(f"closed after {answer!r}")
            answer += data
        if b"AE00210" not in answer:
            raise ValueError(f"not a success: {answer!r}")
    finally:
        sock.close()
    return time.perf_counter() - started


async def closed_loop(port: int, concurrency: int, seconds: float, warmup: float = 0.5) -> dict:
    """``concurrency`` POS paying one after the other for ``seconds``; transactions per second and latency."""
    loop = asyncio.get_running_loop()
    start = time.perf_counter()
    measure_from, deadline = start + warmup, start + warmup + seconds
    latencies: list[float] = []
    errors = 0

    async def pos():
        nonlocal errors
        while time.perf_counter() < deadline:
            try:
                latency = await transaction(loop, port)
            except (OSError, ValueError):
                errors += 1
                continue
            if time.perf_counter() >= measure_from:
                latencies.append(latency)

    await asyncio.gather(*(pos() for _ in range(concurrency)))
    elapsed = time.perf_counter() - measure_from
    return {
        "concurrency": concurrency,
        "transactions": len(latencies),
        "tps": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": statistics.quantiles(latencies, n=100)[98] * 1000 if len(latencies) > 1 else None,
        "errors": errors,
    }


async def burst(port: int, concurrency: int) -> dict:
    """``concurrency`` POS paying at the same instant; when does the last one have its answer?"""
    loop = asyncio.get_running_loop()
    start = time.perf_counter()
    results = await asyncio.gather(*(transaction(loop, port) for _ in range(concurrency)), return_exceptions=True)
    wall = time.perf_counter() - start
    latencies = [r for r in results if isinstance(r, float)]
    return {
        "concurrency": concurrency,
        "answered": len(latencies),
        "wall_s": wall,
        "slowest_s": max(latencies, default=None),
        "errors": [repr(r) for r in results if not isinstance(r, float)][:3],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("port", type=int)
    parser.add_argument("mode", choices=["closed", "burst"])
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    if args.mode == "closed":
        result = asyncio.run(closed_loop(args.port, args.concurrency, args.seconds))
    else:
        result = asyncio.run(burst(args.port, args.concurrency))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
