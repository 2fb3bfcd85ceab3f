"""What metering adds to a predict request's CPU time, measured in one process.

bench/serving.py's throughput ratios swing by +-10% from round to round on a shared VM,
more than metering's effect. This measures that effect directly: the production WSGI
application (`config.wsgi.application`, so the predict fast path, via bench/wsgi_client.py) called in-process,
alternating blocks of metered and unmetered requests (METERING_BENCH_TOGGLE), comparing
process CPU time per request block by block (the blocks of a pair run back to back, so
drifts in the machine's speed cancel). The flusher thread's CPU (it writes the ledger
once a second) is counted separately and added.

    .venv/bin/python bench/metering_cost.py [--pairs 30] [--block 300]

Needs the same environment as the server (bench/serving.py runs it with its own, after
the throughput rounds). Last line: JSON with metering_cpu_us_per_request (the median
paired difference plus the flusher's share), the medians per request, and the flusher's.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PATH = "/v1/models/digits-classifier/predict"


def _thread_cpu_seconds(native_id: int) -> float:
    """CPU time of one thread of this process, from /proc (clock ticks)."""
    fields = Path(f"/proc/self/task/{native_id}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=30)
    parser.add_argument("--block", type=int, default=300, help="requests per block")
    parser.add_argument("--key", default=os.environ.get("BENCH_API_KEY", ""), help="the demo tenant's API key")
    args = parser.parse_args()
    if not args.key:
        raise SystemExit("bench/metering_cost.py: pass --key (or BENCH_API_KEY), e.g. from `manage.py demo_setup`")
    os.environ["METERING_BENCH_TOGGLE"] = "1"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    sys.path.insert(0, str(ROOT))
    from bench.serving import ROW  # the same one-row request the server is benchmarked with
    from bench.wsgi_client import WsgiClient

    client = WsgiClient(api_key=args.key)  # loads Django (config.wsgi)
    from inference.metering import meter

    body = json.dumps({"inputs": [ROW], "mode": "standard"}).encode()

    def call(metered: bool) -> None:
        response = client.post(PATH, body) if metered else client.post(PATH, body, HTTP_X_BENCH_UNMETERED="1")
        if response.status_code != 200:
            raise SystemExit(f"bench/metering_cost.py: predict answered {response.status_code}")

    def block(metered: bool) -> float:
        c0 = time.thread_time()
        for _ in range(args.block):
            call(metered)
        return (time.thread_time() - c0) / args.block * 1e6

    for metered in (True, False):  # warm up both paths and start the flusher
        block(metered)
    flusher = meter()._thread
    flusher_before = _thread_cpu_seconds(flusher.native_id)
    metered_us, unmetered_us, diffs = [], [], []
    for pair in range(args.pairs):
        order = (True, False) if pair % 2 == 0 else (False, True)
        result = {m: block(m) for m in order}
        metered_us.append(result[True])
        unmetered_us.append(result[False])
        diffs.append(result[True] - result[False])
    flusher_us = (_thread_cpu_seconds(flusher.native_id) - flusher_before) * 1e6 / (args.pairs * args.block)
    meter().close()
    cost = statistics.median(diffs) + flusher_us
    print(f"per request, median of {args.pairs} pairs of {args.block}: metered {statistics.median(metered_us):.0f} us, "
          f"unmetered {statistics.median(unmetered_us):.0f} us of thread CPU; paired difference "
          f"{statistics.median(diffs):.1f} us; flusher thread {flusher_us:.1f} us per metered request")
    print(json.dumps({
        "metering_cpu_us_per_request": round(cost, 1),
        "paired_difference_us": round(statistics.median(diffs), 1),
        "flusher_us_per_request": round(flusher_us, 1),
        "metered_cpu_us": round(statistics.median(metered_us), 1),
        "unmetered_cpu_us": round(statistics.median(unmetered_us), 1),
        "pairs": args.pairs, "block": args.block,
    }))


if __name__ == "__main__":
    main()
