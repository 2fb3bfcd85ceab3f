"""Serving benchmark: the metered predict endpoint vs the same endpoint unmetered vs a
plain DRF APIView doing the same inference without metering.

All three run on one gunicorn server (2 sync workers, like production's per-core
workers) in one run, in interleaved rounds, so the ratios compare like with like on a
noisy shared machine. Clients are separate processes on 127.0.0.1.

    .venv/bin/python bench/serving.py [--seconds 2] [--rounds 12] [--clients 8] [--rows 1]

Uses DATABASE_URL if set, else the embedded demo's SQLite database (running
migrate + demo_setup first). Then bench/metering_cost.py measures metering's own CPU
cost per request in one process (paired blocks: far less noisy than throughput).
Last line: JSON with metered_unmetered_ratio, vs_plain_drf_ratio, p99_ms and
metering_cpu_us_per_request.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import multiprocessing as mp
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ROW = [0, 0, 5, 13, 9, 1, 0, 0, 0, 0, 13, 15, 10, 15, 5, 0, 0, 3, 15, 2, 0, 11, 8, 0, 0, 4, 12, 0, 0, 8, 8, 0,
       0, 5, 8, 0, 0, 9, 8, 0, 0, 4, 11, 0, 1, 12, 7, 0, 0, 2, 14, 5, 10, 12, 0, 0, 0, 0, 6, 13, 10, 0, 0, 0]
VARIANTS = {
    "metered": ("/v1/models/digits-classifier/predict", {}),
    "unmetered": ("/v1/models/digits-classifier/predict", {"X-Bench-Unmetered": "1"}),
    "plain_drf": ("/bench/plain-drf/digits-classifier/predict", {}),
}


def _headers(key: str, extra: dict) -> dict:
    # X-Forwarded-Proto as the TLS-terminating proxy in front of production sends it.
    return {"Authorization": f"Bearer {key}", "Content-Type": "application/json", "X-Forwarded-Proto": "https",
            **extra}


def _env() -> dict:
    env = dict(os.environ)
    # Production settings (DEBUG off), with a throwaway secret for this local server.
    env.setdefault("DJANGO_DEBUG", "0")
    env.setdefault("SECRET_KEY", "bench-serving-" + os.urandom(16).hex())
    env.setdefault("ALLOWED_HOSTS", "127.0.0.1,localhost")
    env.setdefault("STATIC_ROOT", tempfile.mkdtemp(prefix="greentier-bench-static-"))  # static files unused
    env.update(METERING_BENCH_TOGGLE="1", DJANGO_ROOT_URLCONF="bench.bench_urls", PYTHONPATH=str(ROOT),
               DJANGO_SETTINGS_MODULE="config.settings", LOG_LEVEL="WARNING")
    return env


def _prepare(env: dict) -> str:
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--no-input", "-v0"], cwd=ROOT, env=env, check=True)
    out = subprocess.run([*manage, "demo_setup"], cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    return out.stdout.strip().splitlines()[-1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _client(port: int, path: str, headers: dict, body: bytes, seconds: float, out: mp.Queue) -> None:
    latencies, errors = [], 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t0 = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            conn.request("POST", path, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                errors += 1
        except OSError:
            errors += 1
        finally:
            conn.close()
        latencies.append(time.perf_counter() - t0)
    out.put((latencies, errors))


def _round_ab(port: int, variant: str, key: str, clients: int, seconds: float, rows: int) -> dict:
    """One round with ApacheBench (C, light on the CPU the server needs)."""
    path, extra = VARIANTS[variant]
    with tempfile.NamedTemporaryFile("wb", suffix=".json", delete=False) as fh:
        fh.write(json.dumps({"inputs": [ROW] * rows, "mode": "standard"}).encode())
    headers = [f"{k}: {v}" for k, v in _headers(key, extra).items() if k != "Content-Type"]
    with tempfile.NamedTemporaryFile("r", suffix=".csv", delete=False) as pct:
        pass
    # -t alone caps a round at 50,000 requests (about 20 s at the rates seen here).
    cmd = ["ab", "-q", "-S", "-t", str(max(1, round(seconds))), "-c", str(clients), "-p", fh.name,
           "-T", "application/json", "-e", pct.name]
    for header in headers:
        cmd += ["-H", header]
    out = subprocess.run([*cmd, f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True, check=True).stdout
    completed = int(re.search(r"Complete requests:\s+(\d+)", out).group(1))
    # ab counts a body of another length than the first as failed; ours vary (energy
    # figures), so only connect/receive/exception failures and non-2xx count.
    failure = re.search(r"\(Connect: (\d+), Receive: (\d+), Length: \d+, Exceptions: (\d+)\)", out)
    failed = sum(int(g) for g in failure.groups()) if failure else 0
    non2xx = re.search(r"Non-2xx responses:\s+(\d+)", out)
    took = float(re.search(r"Time taken for tests:\s+([\d.]+)", out).group(1))
    # -e writes "percentage,milliseconds" rows from 0 to 100
    percentiles = {int(float(p)): float(ms) for p, ms in
                   (line.split(",") for line in Path(pct.name).read_text().splitlines()[1:])}
    os.unlink(fh.name)
    os.unlink(pct.name)
    return {"requests": completed, "errors": failed + (int(non2xx.group(1)) if non2xx else 0), "seconds": took,
            "p50_ms": percentiles[50], "p99_ms": percentiles[99]}


def _round(port: int, variant: str, key: str, clients: int, seconds: float, rows: int) -> dict:
    if shutil.which("ab"):
        return _round_ab(port, variant, key, clients, seconds, rows)
    path, extra = VARIANTS[variant]
    headers = _headers(key, extra)
    body = json.dumps({"inputs": [ROW] * rows, "mode": "standard"}).encode()
    queue: mp.Queue = mp.Queue()
    procs = [mp.Process(target=_client, args=(port, path, headers, body, seconds, queue)) for _ in range(clients)]
    for p in procs:
        p.start()
    results = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    latencies = sorted(lat for lats, _ in results for lat in lats)
    return {"requests": len(latencies), "errors": sum(e for _, e in results), "seconds": seconds,
            "p50_ms": _pct(latencies, 0.50), "p99_ms": _pct(latencies, 0.99)}


def _server_cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of the gunicorn workers so far. Per request, it measures
    the server's cost independently of other load on the machine: on a CPU-bound
    server, capacity is the inverse of CPU per request."""
    import psutil

    total = 0.0
    for child in psutil.Process(pid).children(recursive=True):
        try:
            times = child.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def _warm_up(port: int, key: str, rows: int) -> None:
    """Sequential requests until every worker has loaded its sessions and filled its caches."""
    body = json.dumps({"inputs": [ROW] * rows, "mode": "standard"}).encode()
    for path, extra in VARIANTS.values():
        for _ in range(40):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            conn.request("POST", path, body=body, headers=_headers(key, extra))
            response = conn.getresponse()
            response.read()
            conn.close()
            if response.status != 200:
                raise SystemExit(f"warm-up request to {path} failed with {response.status}")


def _pct(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="per endpoint per round")
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rows", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    env = _env()
    key = _prepare(env)
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi:application",
         "-b", f"127.0.0.1:{port}", "-w", str(args.workers), "--backlog", "2048", "--log-level", "warning"],
        cwd=ROOT, env=env, start_new_session=True)
    try:
        for _ in range(100):
            try:
                http.client.HTTPConnection("127.0.0.1", port, timeout=1).request("GET", "/healthz")
                break
            except OSError:
                time.sleep(0.1)
        _warm_up(port, key, args.rows)
        totals = {v: {"requests": 0, "errors": 0, "seconds": 0.0, "p50": [], "p99": [], "cpu_s": 0.0, "rps": []}
                  for v in VARIANTS}
        # Every order of the three endpoints in turn, so none is always first or last.
        orders = list(itertools.permutations(VARIANTS))
        for r in range(args.rounds):
            for variant in orders[r % len(orders)]:
                cpu_before = _server_cpu_seconds(server.pid)
                result = _round(port, variant, key, args.clients, args.seconds, args.rows)
                t = totals[variant]
                t["cpu_s"] += _server_cpu_seconds(server.pid) - cpu_before
                t["requests"] += result["requests"]
                t["rps"].append(result["requests"] / result["seconds"])
                t["errors"] += result["errors"]
                t["seconds"] += result["seconds"]
                t["p50"].append(result["p50_ms"])
                t["p99"].append(result["p99_ms"])
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)
    # Metering's own cost, measured in one process (bench/metering_cost.py): a much less
    # noisy figure than throughput ratios on a shared machine.
    cost_run = subprocess.run([sys.executable, "bench/metering_cost.py", "--key", key], cwd=ROOT, env=env,
                              capture_output=True, text=True)
    if cost_run.returncode:
        raise SystemExit(f"bench/metering_cost.py failed:\n{cost_run.stderr[-2000:]}")
    print(cost_run.stdout.strip().splitlines()[0])
    cost = json.loads(cost_run.stdout.strip().splitlines()[-1])

    print(f"{'endpoint':<12} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'server CPU us/req':>18}")
    summary = {}
    for variant, t in totals.items():
        rps = t["requests"] / t["seconds"]
        # Per-round percentiles, combined as their median (rounds are equally long).
        cpu_us = t["cpu_s"] / t["requests"] * 1e6
        summary[variant] = {"rps": rps, "p50_ms": statistics.median(t["p50"]), "p99_ms": statistics.median(t["p99"]),
                            "errors": t["errors"], "cpu_us": cpu_us}
        print(f"{variant:<12} {rps:>9.0f} {summary[variant]['p50_ms']:>8.2f} {summary[variant]['p99_ms']:>8.2f} "
              f"{t['errors']:>7} {cpu_us:>10.0f}")
    # Headline ratios: the median over rounds of each round's ratio. The three endpoints of
    # a round run back to back, so slow drifts in the machine's load cancel out.
    def round_ratio(a: str, b: str) -> float:
        return statistics.median(x / y for x, y in zip(totals[a]["rps"], totals[b]["rps"]))

    metered_unmetered = round_ratio("metered", "unmetered")
    vs_plain = round_ratio("metered", "plain_drf")
    # Capacity ratios from server CPU per request: robust to other load on a shared machine.
    cpu_metered_unmetered = summary["unmetered"]["cpu_us"] / summary["metered"]["cpu_us"]
    cpu_vs_plain = summary["plain_drf"]["cpu_us"] / summary["metered"]["cpu_us"]
    print(f"metered / unmetered throughput (median of {args.rounds} rounds): {metered_unmetered:.3f}; "
          f"by server CPU per request: "
          f"{cpu_metered_unmetered:.3f} (target >= 0.95)")
    print(f"metered greentier / plain DRF throughput (median of {args.rounds} rounds): {vs_plain:.3f}; "
          f"by server CPU per request: "
          f"{cpu_vs_plain:.3f} (target >= 1.2)")
    # What the in-process cost implies for a server spending unmetered CPU per request.
    cost_ratio = summary["unmetered"]["cpu_us"] / (summary["unmetered"]["cpu_us"] + cost["metering_cpu_us_per_request"])
    print(f"metering costs {cost['metering_cpu_us_per_request']:.1f} us of CPU per request (in-process, paired); "
          f"against {summary['unmetered']['cpu_us']:.0f} us per unmetered request that is a ratio of {cost_ratio:.3f}")
    if any(s["errors"] for s in summary.values()):
        print("WARNING: some requests failed; the figures above are not comparable", file=sys.stderr)
    print(json.dumps({
        "metered_unmetered_ratio": round(metered_unmetered, 3),
        "metered_unmetered_per_round": [round(x / y, 3) for x, y in zip(totals["metered"]["rps"],
                                                                          totals["unmetered"]["rps"])],
        "vs_plain_drf_ratio": round(vs_plain, 3),
        "vs_plain_drf_per_round": [round(x / y, 3) for x, y in zip(totals["metered"]["rps"],
                                                                     totals["plain_drf"]["rps"])],
        "cpu_metered_unmetered_ratio": round(cpu_metered_unmetered, 3),
        "cpu_vs_plain_drf_ratio": round(cpu_vs_plain, 3),
        "server_cpu_us_per_request": {v: round(s["cpu_us"]) for v, s in summary.items()},
        "metering_cpu_us_per_request": cost["metering_cpu_us_per_request"],
        "metered_unmetered_ratio_from_metering_cost": round(cost_ratio, 3),
        "p99_ms": round(summary["metered"]["p99_ms"], 2),
        "p50_ms": round(summary["metered"]["p50_ms"], 2),
        "metered_rps": round(summary["metered"]["rps"], 1),
        "unmetered_rps": round(summary["unmetered"]["rps"], 1),
        "plain_drf_rps": round(summary["plain_drf"]["rps"], 1),
        "clients": args.clients, "rows_per_request": args.rows, "workers": args.workers,
        "load_generator": "ab" if shutil.which("ab") else "python",
    }))


if __name__ == "__main__":
    main()
