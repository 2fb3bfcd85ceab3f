"""Per-request metering into the usage ledger, without a database round trip per request.

Guarantee (docs/metering.md):
- A served prediction is counted exactly once. Each request's usage is appended to this
  process's spool file (one small O_APPEND write, no fsync) *before* its response is
  returned, and added to an in-memory aggregate under the same lock.
- A flusher thread adds the aggregate to the ledger about once a second, in one
  transaction that also advances the spool file's checkpoint (MeterSpoolCheckpoint).
  If the transaction fails, the aggregate is merged back and retried; nothing is lost
  and nothing is counted twice.
- If the process dies (crash, SIGKILL, OOM), its spool file survives in the page cache
  and on disk. Any other metering process (or `manage.py flush_metering`) recovers it:
  each live process holds an exclusive flock on its own file, so a file that can be
  locked belongs to a dead process; its lines past the checkpoint are added in one
  transaction with the checkpoint, then the file is deleted.
- Only a crash of the whole machine (OS) can lose the last unsynced writes; set
  METERING_FSYNC=1 to fsync every record and close that gap at a throughput cost.
"""

from __future__ import annotations

import atexit
import fcntl
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.db import close_old_connections, connection, transaction

from inference.models import MeterSpoolCheckpoint, UsageHour
from tenants.scope import all_tenants_scope

logger = logging.getLogger(__name__)

# Ledger columns summed per bucket, in spool-line order after the key fields.
SUM_FIELDS = ("predictions", "requests", "cpu_us", "inference_cpu_us", "energy_uj", "co2e_ug", "embodied_co2e_ug")


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs ~3 us more per request
class UsageRecord:
    tenant_id: int
    hour: int  # epoch seconds of the UTC hour
    variant_id: int
    mode: str
    source: str
    predictions: int
    requests: int
    cpu_us: int
    inference_cpu_us: int
    energy_uj: int
    co2e_ug: int
    embodied_co2e_ug: int
    intensity_g_per_kwh: str
    intensity_source: str

    def line(self) -> bytes:
        # Field order: the key, SUM_FIELDS, then the intensity (one f-string: ~1 us, the
        # hot path's cost of metering is this, one write and one aggregate update).
        return (f"{self.tenant_id}\t{self.hour}\t{self.variant_id}\t{self.mode}\t{self.source}\t"
                f"{self.predictions}\t{self.requests}\t{self.cpu_us}\t{self.inference_cpu_us}\t"
                f"{self.energy_uj}\t{self.co2e_ug}\t{self.embodied_co2e_ug}\t"
                f"{self.intensity_g_per_kwh}\t{self.intensity_source}\n").encode()

    def sums(self) -> tuple[int, ...]:
        """The SUM_FIELDS values, in order."""
        return (self.predictions, self.requests, self.cpu_us, self.inference_cpu_us, self.energy_uj, self.co2e_ug,
                self.embodied_co2e_ug)

    @property
    def key(self) -> tuple:
        return (self.tenant_id, self.hour, self.variant_id, self.mode, self.source)


def _parse_line(raw: bytes) -> UsageRecord:
    parts = raw.decode().rstrip("\n").split("\t")
    ints = [int(p) for p in parts[5:12]]
    return UsageRecord(int(parts[0]), int(parts[1]), int(parts[2]), parts[3], parts[4], *ints, parts[12], parts[13])


class _Bucket:
    __slots__ = ("sums", "intensity", "intensity_source")

    def __init__(self, intensity: str, intensity_source: str):
        self.sums = [0] * len(SUM_FIELDS)
        self.intensity = intensity
        self.intensity_source = intensity_source


def _aggregate(records, into: dict | None = None) -> dict:
    buckets = into if into is not None else {}
    for record in records:
        key = record.key
        bucket = buckets.get(key)
        if bucket is None:
            bucket = buckets[key] = _Bucket(record.intensity_g_per_kwh, record.intensity_source)
        bucket.sums = [a + b for a, b in zip(bucket.sums, record.sums())]
    return buckets


def _merge(into: dict, other: dict) -> None:
    for key, bucket in other.items():
        target = into.get(key)
        if target is None:
            into[key] = bucket
        else:
            target.sums = [a + b for a, b in zip(target.sums, bucket.sums)]


def _upsert(buckets: dict, energy_method: str) -> None:
    """Add buckets to the ledger: INSERT ... ON CONFLICT DO UPDATE x = x + excluded.x.

    Works on PostgreSQL and SQLite (both support this upsert form)."""
    if not buckets:
        return
    table = UsageHour._meta.db_table
    columns = ["tenant_id", "hour", "variant_id", "mode", "source", "energy_method", *SUM_FIELDS,
               "intensity_g_per_kwh", "intensity_source"]
    increments = ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in SUM_FIELDS)
    # Table and column names are constants of this module; values go as parameters.
    sql = (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))}) "  # nosec B608
        f"ON CONFLICT (tenant_id, hour, variant_id, mode, source, energy_method) DO UPDATE SET {increments}"
    )
    params = []
    # Sorted keys: every flusher locks ledger rows in the same order, so two processes
    # flushing the same tenant and hour cannot deadlock each other.
    for (tenant_id, hour, variant_id, mode, source), bucket in sorted(buckets.items(), key=lambda kv: kv[0]):
        hour_dt = datetime.fromtimestamp(hour, tz=UTC)
        if connection.vendor == "sqlite":
            hour_dt = hour_dt.replace(tzinfo=None).isoformat(sep=" ")
        params.append([tenant_id, hour_dt, variant_id, mode, source, energy_method, *bucket.sums,
                       Decimal(bucket.intensity), bucket.intensity_source])
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)


def usage_add(records: list[UsageRecord], *, energy_method: str) -> None:
    """Add records to the ledger directly, inside the caller's transaction (batch jobs:
    their usage is written in the same transaction that marks the job finished)."""
    _upsert(_aggregate(records), energy_method)


def _checkpoint_advance(spool_name: str, *, expected: int, offset: int) -> bool:
    """Compare-and-set the checkpoint; False if another flusher moved it first."""
    # A missing row means nothing of the file was counted yet (expected = header end);
    # only the file's flock holder (its live owner, or one recoverer) gets here.
    row, created = MeterSpoolCheckpoint.objects.select_for_update().get_or_create(
        spool_name=spool_name, defaults={"offset": offset})
    if created:
        return True
    if row.offset != expected:
        return False
    row.offset = offset
    row.save(update_fields=["offset", "updated_at"])
    return True


class _RolledBack(Exception):
    pass


def _commit(buckets: dict, energy_method: str, spool_name: str, *, expected: int, offset: int) -> bool:
    try:
        with all_tenants_scope(), transaction.atomic():
            if not _checkpoint_advance(spool_name, expected=expected, offset=offset):
                raise _RolledBack
            _upsert(buckets, energy_method)
    except _RolledBack:
        return False
    return True


def _after_flush(tenant_ids: list[int]) -> None:
    """Budgets see new usage within a flush; a failure here never affects metering."""
    from inference.budgets import budgets_evaluate

    try:
        budgets_evaluate(tenant_ids=tenant_ids)
    except Exception:
        logger.exception("budget evaluation after a metering flush failed; beat will retry")


class Meter:
    """One per process: the spool file, the in-memory aggregate and the flusher thread."""

    def __init__(self, *, spool_dir: Path, energy_method: str, flush_seconds: float, fsync: bool):
        self.spool_dir = spool_dir
        self.energy_method = energy_method
        self.flush_seconds = flush_seconds
        self.fsync = fsync
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._pending: dict = {}
        self._written = 0  # bytes of this spool file written
        self._flushed = 0  # bytes of it already in the ledger
        self._fd: int | None = None
        self._name = ""
        self._pid = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- request path ---------------------------------------------------------------
    def record(self, record: UsageRecord) -> None:
        line = record.line()
        with self._lock:
            if self._pid != os.getpid():  # first use, or a fork (gunicorn --preload)
                self._open()
            os.write(self._fd, line)
            if self.fsync:
                os.fsync(self._fd)
            self._written += len(line)
            _aggregate([record], self._pending)

    def _open(self) -> None:
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        self._pid = os.getpid()
        self._name = f"{socket.gethostname()}-{self._pid}-{uuid.uuid4().hex[:12]}.spool"
        self._fd = os.open(self.spool_dir / self._name, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held for the life of the process
        header = f"#greentier-spool v1\t{self.energy_method}\n".encode()
        os.write(self._fd, header)
        self._written = self._flushed = len(header)
        self._pending = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="greentier-meter-flusher", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def close(self) -> None:
        """At exit: flush, and remove the spool file once all of it is in the ledger
        (if the database is unreachable, the file stays for recovery)."""
        if self._stop.is_set():
            return  # discarded or already closed
        try:
            for attempt in range(3):  # a transient database error must not strand the spool
                try:
                    self.flush()
                    break
                except Exception:
                    if attempt == 2:
                        raise
                    time.sleep(0.2 * (attempt + 1))
            with self._lock:
                if self._pid != os.getpid() or self._fd is None or self._flushed != self._written:
                    return
                name = self._name
                self._stop.set()
                os.unlink(self.spool_dir / name)
                os.close(self._fd)
                self._fd = None
            MeterSpoolCheckpoint.objects.filter(spool_name=name).delete()
        except Exception:  # the next process recovers whatever is left
            logger.warning("metering: could not close the spool cleanly", exc_info=True)

    # -- flushing -------------------------------------------------------------------
    def flush(self) -> None:
        """Add everything recorded so far to the ledger. Safe to call from any thread."""
        with self._flush_lock:
            with self._lock:
                if not self._pending or self._pid != os.getpid() or self._stop.is_set() or self._fd is None:
                    return
                pending, self._pending = self._pending, {}
                expected, offset = self._flushed, self._written
            try:
                ok = _commit(pending, self.energy_method, self._name, expected=expected, offset=offset)
            except Exception:
                with self._lock:
                    _merge(self._pending, pending)  # retry on the next tick; nothing lost
                raise
            if not ok:  # cannot happen for our own live file; never count twice
                logger.error("metering checkpoint for %s moved under us; not counting again", self._name)
            with self._lock:
                self._flushed = offset
        if ok:
            _after_flush(sorted({key[0] for key in pending}))

    def _run(self) -> None:
        next_recovery = 0.0
        while not self._stop.wait(self.flush_seconds):
            try:
                self.flush()
                if time.monotonic() >= next_recovery:
                    recover_orphans(self.spool_dir)
                    next_recovery = time.monotonic() + 30
            except Exception:
                logger.exception("metering flush failed; will retry")
            finally:
                close_old_connections()


def recover_orphans(spool_dir: Path) -> int:
    """Count the spool files of dead processes into the ledger and delete them.

    Returns the number of files recovered. Idempotent and safe to run concurrently."""
    recovered = 0
    if not spool_dir.exists():
        return 0
    for path in sorted(spool_dir.glob("*.spool")):
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live process owns it
            if not _same_file(fd, path):
                continue  # its owner closed cleanly and removed it while we waited
            if _recover_file(path):
                recovered += 1
        finally:
            os.close(fd)
    return recovered


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


def _recover_file(path: Path) -> bool:
    data = path.read_bytes()
    header_end = data.find(b"\n")
    if not data.startswith(b"#greentier-spool v1\t") or header_end < 0:
        logger.error("metering spool %s has no valid header; left in place for inspection", path)
        return False
    energy_method = data[len(b"#greentier-spool v1\t"):header_end].decode()
    checkpoint = MeterSpoolCheckpoint.objects.filter(spool_name=path.name).first()
    start = checkpoint.offset if checkpoint else header_end + 1
    end = data.rfind(b"\n") + 1  # a torn last line belongs to a response never sent
    if end > start:
        records = [_parse_line(line) for line in data[start:end].splitlines(keepends=True) if line.strip()]
        if not _commit(_aggregate(records), energy_method, path.name, expected=start, offset=end):
            return False
    path.unlink(missing_ok=True)
    MeterSpoolCheckpoint.objects.filter(spool_name=path.name).delete()
    return True


_meter: Meter | None = None
_meter_lock = threading.Lock()


def meter() -> Meter:
    global _meter
    if _meter is None:
        from inference.energy import power_model

        with _meter_lock:
            if _meter is None:
                _meter = Meter(
                    spool_dir=Path(settings.METERING_SPOOL_DIR),
                    energy_method=power_model().method,
                    flush_seconds=settings.METERING_FLUSH_SECONDS,
                    fsync=settings.METERING_FSYNC,
                )
    return _meter


def meter_discard() -> None:
    """Tests only: drop this process's pending usage and spool file, as if never recorded."""
    global _meter
    if _meter is not None and _meter._fd is not None and _meter._pid == os.getpid():
        _meter._stop.set()
        os.close(_meter._fd)
        (_meter.spool_dir / _meter._name).unlink(missing_ok=True)
    _meter = None


def usage_flush() -> None:
    """Flush this process's pending usage and recover dead processes' spools."""
    if _meter is not None:
        _meter.flush()
    recover_orphans(Path(settings.METERING_SPOOL_DIR))


def hour_of(ts: float) -> int:
    return int(ts // 3600 * 3600)

