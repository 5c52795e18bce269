"""Measure the simulator against the bare answerer in one invocation and print a Markdown report.

    python bench/run.py [--seconds 3]

Everything runs on 127.0.0.1. Servers are subprocesses; the generator runs here.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

from loadgen import burst, closed_loop

from caisse_ap_ip.testing import ServerProcess, TerminalError

ROOT = Path(__file__).resolve().parent.parent


def start(command: list[str]) -> tuple[subprocess.Popen, int]:
    """The bare answerer: prints 'listening on HOST:PORT' as the simulator does, so the same starter reads it."""
    try:
        server = ServerProcess(command=command, keep_stderr=False)  # -l debug writes a lot
    except TerminalError as error:
        raise SystemExit(str(error)) from None
    return server.process, server.port


def simulator(*options: str) -> tuple[subprocess.Popen, int]:
    return start([sys.executable, str(ROOT / "caisse-ap-ip-server.py"), *options])


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{os.cpu_count()} cores, {model}, {platform.system()} {platform.release()}, Python {platform.python_version()}"
    )


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (Linux /proc), None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measured_run(process: subprocess.Popen, port: int, concurrency: int, seconds: float) -> dict:
    """closed_loop, plus the server's CPU time per transaction: steadier than throughput on a shared machine."""
    before = cpu_seconds(process.pid)
    result = asyncio.run(closed_loop(port, concurrency, seconds, warmup=0))
    after = cpu_seconds(process.pid)
    result["cpu_us"] = (after - before) / result["transactions"] * 1e6 if before is not None else float("nan")
    return result


def throughput_rows(seconds: float, rounds: int) -> list[str]:
    """Servers take turns, ``rounds`` times, so that a noisy neighbour hurts them alike; medians are reported."""
    servers = {
        "bare answerer": start([sys.executable, str(ROOT / "bench" / "bare_answerer.py")]),
        "simulator -d 0 -l warn": simulator("-d", "0", "-l", "warn"),
        "simulator -d 0": simulator("-d", "0"),
        "simulator -d 0 -l debug": simulator("-d", "0", "-l", "debug"),
    }
    rows = []
    try:
        for concurrency in (1, 8, 32):
            runs: dict[str, list[dict]] = {name: [] for name in servers}
            for _ in range(rounds):
                for name, (process, port) in servers.items():
                    runs[name].append(measured_run(process, port, concurrency, seconds))
            ceiling = statistics.median(run["tps"] for run in runs["bare answerer"])
            for name, results in runs.items():
                tps = statistics.median(run["tps"] for run in results)
                p50 = statistics.median(run["p50_ms"] for run in results)
                p99 = statistics.median(run["p99_ms"] for run in results)
                cpu = statistics.median(run["cpu_us"] for run in results)
                errors = sum(run["errors"] for run in results)
                rows.append(
                    f"| {concurrency} | {name} | {tps:.0f} | {tps / ceiling:.0%} | {p50:.2f} | {p99:.2f} "
                    f"| {cpu:.0f} | {errors} |"
                )
    finally:
        for process, _ in servers.values():
            process.terminate()
            process.wait()
    return rows


def burst_rows() -> list[str]:
    process, port = simulator("-d", "1")
    try:
        rows = []
        for concurrency in (50, 500):
            result = asyncio.run(burst(port, concurrency))
            rows.append(
                f"| {concurrency} | {result['answered']}/{concurrency} | {result['wall_s']:.2f} "
                f"| {result['slowest_s']:.2f} | {', '.join(result['errors']) or '-'} |"
            )
        return rows
    finally:
        process.terminate()
        process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=2.0, help="measuring time per throughput run (default: 2)")
    parser.add_argument("--rounds", type=int, default=5, help="runs per server and concurrency (default: 5)")
    args = parser.parse_args()
    print(f"Machine: {machine()}\n")
    print(f"Throughput, one connection per transaction, answer at once (-d 0); median of {args.rounds} runs:\n")
    print("| POS | server | transactions/s | of bare | p50 ms | p99 ms | server CPU µs/transaction | errors |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    print("\n".join(throughput_rows(args.seconds, args.rounds)))
    print("\nSimultaneous POS, each paying once, terminal answering after 1 s (-d 1):\n")
    print("| POS | answered | wall time s | slowest answer s | errors |")
    print("|---:|---:|---:|---:|---|")
    print("\n".join(burst_rows()))


if __name__ == "__main__":
    main()
