"""The one power model: CPU time -> energy, used by request metering and by the
registry's profiler alike, so their figures compare.

Methods, in order of preference:
- "rapl": when /sys/class/powercap/intel-rapl:0/energy_uj is readable, a short
  calibration at start-up measures package watts per busy core (RAPL energy delta over
  the busy CPU time of the whole machine in the same interval);
- "cpu-model": watts per busy core from ENERGY_CPU_WATTS_PER_CORE, else from
  CodeCarbon's CPU table (TDP of this CPU model / its cores), else a stated default.

Energy attributed to work = busy CPU time x watts per core x PUE. Idle power is not
attributed to requests (marginal attribution; docs/methodology.md says why).
"""

from __future__ import annotations

import csv
import functools
import os
import re
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from django.conf import settings

from carbon.units import cpu_energy_uj

# AMD EPYC 7763: 280 W TDP / 64 cores = 4.375 W per core; a typical cloud core. Used only
# when this CPU is not in CodeCarbon's table and nothing is configured.
DEFAULT_WATTS_PER_CORE = Decimal("4.375")
DEFAULT_SOURCE = "default: AMD EPYC 7763 TDP 280 W / 64 cores"


@dataclass(frozen=True)
class PowerModel:
    watts_per_core: Decimal
    pue: Decimal
    method: str  # stored with every usage record and registry profile

    def energy_uj(self, cpu_us: int) -> int:
        return cpu_energy_uj(cpu_us=cpu_us, watts_per_core=self.watts_per_core, pue=self.pue)


def thread_cpu_us() -> int:
    """CPU time of the calling thread (onnxruntime runs on it with one intra-op thread)."""
    return time.thread_time_ns() // 1000


def _cpu_model_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def _codecarbon_watts_per_core(model_name: str) -> tuple[Decimal, str] | None:
    """TDP / cores for this CPU from CodeCarbon's table, when the name matches exactly
    and the name says how many cores the part has (e.g. "... 64-Core Processor")."""
    import codecarbon

    table = Path(codecarbon.__file__).parent / "data" / "hardware" / "cpu_power.csv"
    cores_match = re.search(r"(\d+)-Core", model_name)
    if not model_name or not table.exists() or not cores_match:
        return None
    with table.open() as fh:
        for row in csv.DictReader(fh):
            if row["Name"].strip() and row["Name"].strip() in model_name:
                tdp = Decimal(row["TDP"])
                cores = int(cores_match.group(1))
                return (tdp / cores).quantize(Decimal("0.001")), f"codecarbon TDP {tdp} W / {cores} cores ({row['Name']})"
    return None


def _rapl_watts_per_core(path: Path, seconds: float = 0.5) -> Decimal | None:
    try:
        start_uj = int(path.read_text())
        start_cpu = sum(os.times()[:2])
        t0 = time.monotonic()
        busy_until = t0 + seconds
        while time.monotonic() < busy_until:  # keep one core busy while sampling
            pass
        end_uj = int(path.read_text())
        busy_s = sum(os.times()[:2]) - start_cpu
    except (OSError, ValueError):
        return None
    if end_uj <= start_uj or busy_s <= 0:
        return None
    return (Decimal(end_uj - start_uj) / Decimal(1_000_000) / Decimal(str(busy_s))).quantize(Decimal("0.001"))


@functools.lru_cache(maxsize=1)
def power_model() -> PowerModel:
    pue = Decimal(str(getattr(settings, "ENERGY_PUE", "1.2")))
    configured = getattr(settings, "ENERGY_CPU_WATTS_PER_CORE", None)
    rapl_path = Path(getattr(settings, "ENERGY_RAPL_PATH", "/sys/class/powercap/intel-rapl:0/energy_uj"))
    if configured:
        watts, source = Decimal(str(configured)), "configured ENERGY_CPU_WATTS_PER_CORE"
        method = "cpu-model"
    elif getattr(settings, "ENERGY_USE_RAPL", True) and (rapl := _rapl_watts_per_core(rapl_path)) is not None:
        watts, source, method = rapl, f"RAPL {rapl_path}", "rapl"
    else:
        found = _codecarbon_watts_per_core(_cpu_model_name())
        watts, source = found if found else (DEFAULT_WATTS_PER_CORE, DEFAULT_SOURCE)
        method = "cpu-model"
    return PowerModel(
        watts_per_core=watts, pue=pue, method=f"{method}: {watts} W/core ({source}), PUE {pue}"
    )
