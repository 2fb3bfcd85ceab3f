"""The long part of the production suite: load, faults and fuzz against `make cluster`.

    .venv/bin/python bench/suite.py [--load-seconds 60] [--clients 32] [--skip-fuzz]

Runs the production topology (scripts/cluster.sh: 2 gunicorn workers, 2 Celery workers,
beat) against its own PostgreSQL and Redis on 127.0.0.1 (a private PostgreSQL on port
5544 and Redis on 6390, so they can be restarted and stopped without touching the
machine's servers), then:

1. load: --clients concurrent clients for --load-seconds; 5% of requests are retried
   with the same Idempotency-Key. Checks: metered predictions - distinct successful
   predictions = 0; kWh and CO2e totals = the per-request sums. Prints p50/p95/p99 and
   throughput.
2. faults: SIGKILL a Celery worker mid batch job (one complete result, one metering
   record); PostgreSQL restarted under load (clean 503s only, no half-written usage,
   seconds to recover); Redis stopped under load (predictions still served and metered,
   a batch job submitted meanwhile runs once Redis is back).
3. fuzz: schemathesis over the whole schema with FUZZ_EXAMPLES examples per operation.

The invoice-run kill (50 tenants, SIGKILL of the worker, one invoice per tenant in
localstripe) and the webhook replay in every order run in the test suite
(tests/billing/test_run_resilience.py, tests/billing/test_webhooks.py).
Last line: JSON with every figure.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = str(ROOT / ".venv" / "bin" / "python")
PG_PORT, REDIS_PORT, WEB_PORT = 5544, 6390, 8190
ROW = [float((i * 7) % 17) for i in range(64)]


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- private servers -----------------------------------------------------------------------------


class PrivatePostgres:
    """A throwaway PostgreSQL cluster on 127.0.0.1:PG_PORT, owned by the postgres OS user
    (PostgreSQL refuses to run as root)."""

    def __init__(self) -> None:
        self.bindir = next((p for p in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)), None)
        if self.bindir is None:
            import pgserver

            self.bindir = Path(pgserver.__file__).parent / "pginstall" / "bin"
        self.data = Path(tempfile.mkdtemp(prefix="greentier-suite-pg-"))
        shutil.chown(self.data, "postgres")

    def _as_postgres(self, *args: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *args], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)

    def start(self) -> None:
        if not (self.data / "PG_VERSION").exists():
            self._as_postgres(str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust")
        self._as_postgres(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-w", "-l", str(self.data / "log"),
                          "-o", f"-p {PG_PORT} -c listen_addresses=127.0.0.1 -k {self.data}", "start")

    def restart(self) -> None:
        self._as_postgres(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-w", "-m", "fast",
                          "-o", f"-p {PG_PORT} -c listen_addresses=127.0.0.1 -k {self.data}", "restart")

    def stop(self) -> None:
        try:
            self._as_postgres(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-w", "-m", "fast", "stop")
        finally:
            shutil.rmtree(self.data, ignore_errors=True)


class PrivateRedis:
    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(["redis-server", "--port", str(REDIS_PORT), "--bind", "127.0.0.1",
                                      "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL)
        _wait_port(REDIS_PORT)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


def _wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


# --- the cluster ---------------------------------------------------------------------------------


def cluster_env() -> dict:
    env = dict(os.environ)
    env.update(CLUSTER_PG=f"postgres://postgres@127.0.0.1:{PG_PORT}", CLUSTER_REDIS=f"redis://127.0.0.1:{REDIS_PORT}/0",
               CLUSTER_PORT=str(WEB_PORT), CLUSTER_DB="greentier_suite", PGCONNECT_TIMEOUT="3",
               # faults are found fast: a silent batch worker after 5 s, broker redelivery after 30 s
               BATCH_STALE_SECONDS="5", CELERY_VISIBILITY_TIMEOUT="30", BATCH_CHUNK_ROWS="50",
               GUNICORN_ACCESSLOG="/dev/null", LOG_LEVEL="WARNING")
    return env


def cluster(*args: str) -> str:
    return subprocess.run([str(ROOT / "scripts" / "cluster.sh"), *args], cwd=ROOT, env=cluster_env(), check=True,
                          capture_output=True, text=True).stdout


def manage(*args: str, env_extra: dict | None = None) -> str:
    env = cluster_env()
    env.update(DATABASE_URL=f"postgres://postgres@127.0.0.1:{PG_PORT}/greentier_suite", DJANGO_DEBUG="0",
               SECRET_KEY="suite-" + "x" * 50, ALLOWED_HOSTS="127.0.0.1", CARBON_OFFLINE="1",
               REDIS_URL=f"redis://127.0.0.1:{REDIS_PORT}/0", CELERY_BROKER_URL=f"redis://127.0.0.1:{REDIS_PORT}/0",
               MEDIA_ROOT=str(ROOT / "var" / "cluster" / "media"), **(env_extra or {}))
    return subprocess.run([PY, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True,
                          text=True).stdout


def sql(query: str) -> list[tuple]:
    import psycopg

    with psycopg.connect(f"postgresql://postgres@127.0.0.1:{PG_PORT}/greentier_suite", autocommit=True) as conn:
        return conn.execute(query).fetchall()


def request(method: str, path: str, key: str, body: bytes | None = None, headers: dict | None = None,
            content_type: str = "application/json", timeout: float = 30) -> tuple[int, bytes, float]:
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", WEB_PORT, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers={"Authorization": f"Bearer {key}",
                                                      "Content-Type": content_type, **(headers or {})})
        response = conn.getresponse()
        return response.status, response.read(), time.perf_counter() - started
    except OSError:
        return 0, b"", time.perf_counter() - started
    finally:
        conn.close()


def new_tenant(slug: str, tier: str = "standard") -> str:
    manage("create_tenant", slug, "--tier", tier)
    return manage("create_api_key", slug).strip().splitlines()[-1]


# --- 1. load ---------------------------------------------------------------------------------------


def predict_body(i: int) -> bytes:
    rows = 1 + i % 4
    return json.dumps({"inputs": [ROW] * rows, "mode": ["standard", "efficiency", "accurate"][i % 3]}).encode()


def load(key: str, clients: int, seconds: float, retry_share: float = 0.05, stop_at: float | None = None):
    """Returns (results, elapsed): one dict per logical request (retries share a key)."""
    results: list[dict] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    rng = random.Random(0)

    def client(n: int) -> None:
        i = n
        while time.monotonic() < deadline:
            i += clients
            body = predict_body(i)
            idem = uuid.uuid4().hex
            attempts = 2 if rng.random() < retry_share else 1
            for _ in range(attempts):
                status, payload, seconds_taken = request("POST", "/v1/models/digits-classifier/predict", key, body,
                                                         {"Idempotency-Key": idem})
                with lock:
                    results.append({"key": idem, "status": status, "body": payload, "s": seconds_taken})

    started = time.monotonic()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    return results, time.monotonic() - started


def summarise(results: list[dict], elapsed: float) -> dict:
    ok = [r for r in results if r["status"] == 200]
    latencies = sorted(r["s"] * 1000 for r in ok)
    distinct: dict[str, dict] = {}
    bodies_differ = 0
    for r in ok:
        body = json.loads(r["body"])
        if r["key"] in distinct and distinct[r["key"]]["raw"] != r["body"]:
            bodies_differ += 1
        distinct.setdefault(r["key"], {"raw": r["body"], "json": body})
    statuses: dict[int, int] = {}
    for r in results:
        statuses[r["status"]] = statuses.get(r["status"], 0) + 1

    def pct(q):
        return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))], 2) if latencies else None

    return {
        "requests": len(results), "ok": len(ok), "statuses": statuses, "retried_same_key": len(ok) - len(distinct),
        "replays_with_other_body": bodies_differ, "throughput_rps": round(len(results) / elapsed, 1),
        "p50_ms": pct(0.50), "p95_ms": pct(0.95), "p99_ms": pct(0.99),
        "distinct": distinct,
    }


def ledger_totals(slug: str) -> tuple[int, int, int]:
    rows = sql("SELECT coalesce(sum(u.predictions),0), coalesce(sum(u.energy_uj),0), "
               "coalesce(sum(u.co2e_ug + u.embodied_co2e_ug),0) FROM inference_usagehour u "
               f"JOIN tenants_tenant t ON t.id = u.tenant_id WHERE t.slug = '{slug}' AND u.source = 'online'")
    return tuple(int(v) for v in rows[0])


def response_totals(summary: dict) -> tuple[int, int, int]:
    bodies = [d["json"] for d in summary["distinct"].values()]
    return (sum(len(b["predictions"]) for b in bodies), sum(b["usage"]["energy_uj"] for b in bodies),
            sum(b["usage"]["co2e_ug"] for b in bodies))


def flushed(slug: str, expected: tuple, timeout: float = 30) -> tuple:
    """The ledger's totals once they match `expected` (None matches anything), or after timeout."""
    def matches(got):
        return all(e is None or e == g for e, g in zip(expected, got))

    deadline = time.monotonic() + timeout
    got = ledger_totals(slug)
    while not matches(got) and time.monotonic() < deadline:
        time.sleep(0.5)
        got = ledger_totals(slug)
    return got


# --- 2. faults -------------------------------------------------------------------------------------


def kill_worker(name: str) -> None:
    import psutil

    pid = int((ROOT / "var" / "cluster" / f"{name}.pid").read_text())
    parent = psutil.Process(pid)
    for proc in [*parent.children(recursive=True), parent]:
        proc.send_signal(signal.SIGKILL)


def batch_kill_fault(key: str) -> dict:
    rows = "\n".join(",".join(str(v) for v in ROW) for _ in range(20_000))
    header = ",".join(f"x{i}" for i in range(64))
    boundary = uuid.uuid4().hex
    deadline = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 7200))
    parts = [("model", "digits-classifier"), ("mode", "standard"), ("deadline", deadline)]
    body = b"".join(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n".encode()
                    for k, v in parts)
    body += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"in.csv\"\r\n"
             f"Content-Type: text/csv\r\n\r\n{header}\n{rows}\n\r\n--{boundary}--\r\n").encode()
    status, payload, _ = request("POST", "/v1/batches", key, body, content_type=f"multipart/form-data; boundary={boundary}")
    assert status == 201, payload
    job_id = json.loads(payload)["id"]

    def job():
        return json.loads(request("GET", f"/v1/batches/{job_id}", key)[1])

    deadline_s = time.monotonic() + 120
    while job()["progress"]["rows_done"] == 0 and time.monotonic() < deadline_s:
        time.sleep(0.05)
    done_at_kill = job()["progress"]["rows_done"]
    kill_worker("w1")
    kill_worker("w2")  # both consume the batch queue
    log(f"killed both workers with job {job_id} at {done_at_kill}/20000 rows")
    cluster("worker", "w1")
    cluster("worker", "w2")
    recovered_at = time.monotonic()
    while job()["status"] != "succeeded" and time.monotonic() < recovered_at + 180:
        manage("shell", "-c", "from inference.batches import batch_jobs_dispatch_overdue; batch_jobs_dispatch_overdue()")
        time.sleep(3)
    final = job()
    status, results, _ = request("GET", f"/v1/batches/{job_id}/results", key)
    result_rows = len(results.decode().strip().splitlines()) - 1 if status == 200 else -1
    ledger = sql(f"SELECT count(*), coalesce(sum(predictions),0) FROM inference_usagehour WHERE source = 'batch'")
    return {"status": final["status"], "attempts": final["run"]["attempts"], "rows_at_kill": done_at_kill,
            "result_rows": result_rows, "batch_ledger_rows": ledger[0][0], "batch_ledger_predictions": int(ledger[0][1]),
            "seconds_to_complete": round(time.monotonic() - recovered_at, 1)}


def postgres_restart_fault(pg: PrivatePostgres, key: str, slug: str) -> dict:
    before = ledger_totals(slug)
    results: list[dict] = []
    outcome: dict = {}

    def poll_database_route():
        """A database-backed route polled every 50 ms through the restart."""
        while "done" not in outcome:
            status, _, _ = request("GET", "/v1/usage?granularity=month", key, timeout=5)
            now = time.monotonic()
            if status != 200 and "restart_at" in outcome:
                outcome.setdefault("usage_statuses", {}).setdefault(status, 0)
                outcome["usage_statuses"][status] += 1
                outcome["last_failure_at"] = now
            elif status == 200 and "back_at" in outcome and "recovered_at" not in outcome:
                outcome["recovered_at"] = now
            time.sleep(0.05)

    def restart_later():
        time.sleep(3)
        outcome["restart_at"] = time.monotonic()
        pg.restart()
        outcome["back_at"] = time.monotonic()

    poller = threading.Thread(target=poll_database_route)
    poller.start()
    thread = threading.Thread(target=restart_later)
    thread.start()
    results, elapsed = load(key, 8, 15, retry_share=0.0)
    thread.join(120)
    outcome["done"] = True
    poller.join(30)
    summary = summarise(results, elapsed)
    served = response_totals(summary)
    after = flushed(slug, tuple(b + s for b, s in zip(before, served)))
    return {
        "requests": summary["requests"], "statuses": summary["statuses"],
        "usage_api_statuses_during_outage": outcome.get("usage_statuses", {}),
        "restart_seconds": round(outcome["back_at"] - outcome["restart_at"], 2),
        "seconds_to_recover": round(outcome.get("recovered_at", outcome["back_at"]) - outcome["restart_at"], 2),
        "metered_minus_served_predictions": after[0] - before[0] - served[0],
        "metered_minus_served_energy_uj": after[1] - before[1] - served[1],
    }


def redis_down_fault(redis: PrivateRedis, key: str, slug: str) -> dict:
    before = ledger_totals(slug)
    redis.stop()
    results = []
    for i in range(200):
        status, payload, _ = request("POST", "/v1/models/digits-classifier/predict", key, predict_body(i))
        results.append({"key": str(i), "status": status, "body": payload, "s": 0})
    summary = summarise(results, 1)
    served = response_totals(summary)
    # a batch job submitted while the broker is down is stored and queued later
    header = ",".join(f"x{i}" for i in range(64))
    boundary = uuid.uuid4().hex
    deadline = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 7200))
    body = b"".join(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n".encode()
                    for k, v in [("model", "digits-classifier"), ("deadline", deadline)])
    body += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"in.csv\"\r\n\r\n"
             f"{header}\n{','.join(str(v) for v in ROW)}\n\r\n--{boundary}--\r\n").encode()
    status, payload, _ = request("POST", "/v1/batches", key, body, content_type=f"multipart/form-data; boundary={boundary}")
    job_id = json.loads(payload)["id"] if status == 201 else None
    redis.start()
    after = flushed(slug, tuple(b + s for b, s in zip(before, served)))
    job_status = None
    if job_id:
        deadline_s = time.monotonic() + 120
        while time.monotonic() < deadline_s:
            manage("shell", "-c", "from inference.batches import batch_jobs_dispatch_overdue; batch_jobs_dispatch_overdue()")
            job_status = json.loads(request("GET", f"/v1/batches/{job_id}", key)[1])["status"]
            if job_status == "succeeded":
                break
            time.sleep(3)
    return {"predict_statuses_while_down": summary["statuses"],
            "metered_minus_served_predictions": after[0] - before[0] - served[0],
            "batch_submit_status_while_down": status, "batch_status_after_recovery": job_status}


# --- main ------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description="load, fault and fuzz suite against make cluster")
    parser.add_argument("--load-seconds", type=float, default=60)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--skip-fuzz", action="store_true")
    parser.add_argument("--fuzz-examples", type=int, default=200)
    args = parser.parse_args()

    pg, redis = PrivatePostgres(), PrivateRedis()
    report: dict = {}
    try:
        pg.start()
        redis.start()
        subprocess.run(["psql", f"postgres://postgres@127.0.0.1:{PG_PORT}/postgres", "-qc",
                        "CREATE ROLE greentier_app NOSUPERUSER NOBYPASSRLS"], check=False, capture_output=True)
        log("starting the cluster (migrations, models) ...")
        print(cluster("start"), end="")
        key = new_tenant("loadtest")
        for _ in range(20):  # warm every web worker
            request("POST", "/v1/models/digits-classifier/predict", key, predict_body(0))

        log(f"load: {args.clients} clients for {args.load_seconds:.0f} s, 5% retried with the same key")
        before = flushed("loadtest", (20, None, None), timeout=10)  # the warm-up requests, once flushed
        results, elapsed = load(key, args.clients, args.load_seconds)
        summary = summarise(results, elapsed)
        served = response_totals(summary)
        metered = tuple(m - b for m, b in zip(flushed("loadtest", tuple(b + s for b, s in zip(before, served))),
                                              before))
        report["load"] = {k: v for k, v in summary.items() if k != "distinct"}
        report["load"].update({
            "distinct_successful_predictions": served[0],
            "metered_minus_distinct_predictions": metered[0] - served[0],
            "metered_minus_response_energy_uj": metered[1] - served[1],
            "metered_minus_response_co2e_ug": metered[2] - served[2],
        })
        log(f"load: {json.dumps(report['load'])}")

        log("fault: SIGKILL the Celery workers in the middle of a batch job")
        report["batch_worker_kill"] = batch_kill_fault(new_tenant("batchfault"))
        log(json.dumps(report["batch_worker_kill"]))

        log("fault: PostgreSQL restarted under load")
        pg_key = new_tenant("pgfault")
        report["postgres_restart"] = postgres_restart_fault(pg, pg_key, "pgfault")
        log(json.dumps(report["postgres_restart"]))

        log("fault: Redis down under load")
        redis_key = new_tenant("redisfault")
        report["redis_down"] = redis_down_fault(redis, redis_key, "redisfault")
        log(json.dumps(report["redis_down"]))
    finally:
        try:
            cluster("stop")
        except Exception as exc:  # keep tearing down
            log(f"cluster stop: {exc}")
        redis.stop()
        pg.stop()

    if not args.skip_fuzz:
        log(f"fuzz: schemathesis, {args.fuzz_examples} examples per operation")
        env = dict(os.environ, FUZZ_EXAMPLES=str(args.fuzz_examples))
        fuzz = subprocess.run([PY, "-m", "pytest", "-q", "-p", "no:logging", "tests/fuzz"], cwd=ROOT, env=env,
                              capture_output=True, text=True)
        report["fuzz"] = {"examples_per_operation": args.fuzz_examples, "passed": fuzz.returncode == 0,
                          "summary": fuzz.stdout.strip().splitlines()[-1] if fuzz.stdout.strip() else fuzz.stderr[-300:]}
        log(json.dumps(report["fuzz"]))

    load_r = report["load"]
    print()
    print("| check | result |")
    print("|---|---|")
    print(f"| load: requests / throughput | {load_r['requests']} / {load_r['throughput_rps']} req/s |")
    print(f"| load: p50 / p95 / p99 | {load_r['p50_ms']} / {load_r['p95_ms']} / {load_r['p99_ms']} ms |")
    print(f"| load: metered - distinct successful predictions | {load_r['metered_minus_distinct_predictions']} |")
    print(f"| load: kWh and CO2e, ledger - per-request sums | {load_r['metered_minus_response_energy_uj']} uJ, "
          f"{load_r['metered_minus_response_co2e_ug']} ug |")
    b = report["batch_worker_kill"]
    print(f"| SIGKILL workers mid batch | {b['status']}, {b['attempts']} attempts, {b['result_rows']} result rows, "
          f"{b['batch_ledger_rows']} ledger row(s) with {b['batch_ledger_predictions']} predictions |")
    p = report["postgres_restart"]
    print(f"| PostgreSQL restart under load | statuses {p['statuses']}, usage API {p['usage_api_statuses_during_outage']}, "
          f"recovered in {p['seconds_to_recover']} s, metered - served = {p['metered_minus_served_predictions']} |")
    r = report["redis_down"]
    print(f"| Redis down | predictions {r['predict_statuses_while_down']}, metered - served = "
          f"{r['metered_minus_served_predictions']}, batch submitted: {r['batch_submit_status_while_down']}, "
          f"then {r['batch_status_after_recovery']} |")
    if "fuzz" in report:
        print(f"| fuzz ({report['fuzz']['examples_per_operation']} examples/operation) | {report['fuzz']['summary']} |")
    print(json.dumps(report, default=str))


if __name__ == "__main__":
    main()
