"""One client call against a local simulator (-d 0), ours beside a stand-in of the original client, in one run.

    python bench/client_timing.py [--calls 20]

Modules are compiled first, as an installed package's are. Each call is a new process, as a shell script
or a POS calling the client runs it; they alternate, and the
median wall time of each is reported with their ratio. Everything runs on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from caisse_ap_ip.testing import ServerProcess, TerminalError

ROOT = Path(__file__).resolve().parent.parent


def start_server() -> tuple[subprocess.Popen, int]:
    try:
        server = ServerProcess("-d", "0", "-l", "warn", command=[sys.executable, str(ROOT / "caisse-ap-ip-server.py")])
    except TerminalError as error:
        raise SystemExit(str(error)) from None
    return server.process, server.port


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    elapsed = time.perf_counter() - started
    if "AE00210" not in result.stdout and "result: success" not in result.stdout:
        raise SystemExit(f"{command[1]} did not get a success: {result.stdout!r} {result.stderr!r}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=20, help="calls of each client (default: 20)")
    args = parser.parse_args()
    # both clients start from compiled modules, as an installed package does (even with PYTHONDONTWRITEBYTECODE)
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(ROOT / "caisse_ap_ip"), str(ROOT / "bench")], check=True
    )
    process, port = start_server()
    clients = {
        "caisse-ap-ip-client": [sys.executable, str(ROOT / "caisse-ap-ip-client.py"), "-p", str(port), "-l", "warn"],
        "original client (stand-in)": [sys.executable, str(ROOT / "bench" / "original_client.py"), "-p", str(port)],
    }
    times: dict[str, list[float]] = {name: [] for name in clients}
    try:
        for _ in range(args.calls):
            for name, command in clients.items():
                times[name].append(timed(command))
    finally:
        process.terminate()
        process.wait()
    original = statistics.median(times["original client (stand-in)"])
    print("| client | median wall time per call | of the original |")
    print("|---|---:|---:|")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"| {name} | {median * 1000:.0f} ms | {median / original:.2f}x |")


if __name__ == "__main__":
    main()
