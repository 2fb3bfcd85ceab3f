"""import_grid_intensity on the shared data files (both formats) and on malformed files."""

import csv
import io
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Sum

from carbon.models import GridIntensity
from tests.conftest import ROOT, SHARED

DATA = SHARED / "data" / "grid-intensity"
EM_GB = DATA / "electricitymaps-2023" / "GB_2023_hourly.csv"
EM_DE = DATA / "electricitymaps-2023" / "DE-LU_2023_hourly.csv"
LWA_FR = DATA / "lets-wait-awhile" / "fr_ci.csv"
LWA_GB = DATA / "lets-wait-awhile" / "gb_ci.csv"
UTC = timezone.utc
Q = Decimal("0.001")


def run(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command("import_grid_intensity", *map(str, args), stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def read_rows(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def excerpt(tmp_path, source, line_numbers, name="excerpt.csv"):
    """A temporary file with the header and the given 1-based lines of a shared file."""
    lines = source.read_text(encoding="utf-8").splitlines()
    path = tmp_path / name
    path.write_text("\n".join([lines[0]] + [lines[n - 1] for n in line_numbers]) + "\n", encoding="utf-8")
    return path


def write(tmp_path, text, name="bad.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.django_db
def test_electricitymaps_export_stores_both_kinds_and_reimport_is_idempotent():
    rows = read_rows(EM_GB)
    header, data = rows[0], rows[1:]
    col = {name: header.index(name) for name in header}
    expected_sum = {
        "direct": sum(Decimal(r[col["Carbon Intensity gCO₂eq/kWh (direct)"]]).quantize(Q) for r in data),
        "lifecycle": sum(Decimal(r[col["Carbon Intensity gCO₂eq/kWh (LCA)"]]).quantize(Q) for r in data),
    }
    expected_estimated = sum(1 for r in data if r[col["Data Estimated"]] == "true")

    out, err = run(EM_GB, "--zone", "GB")

    assert out.strip() == (f"GB_2023_hourly.csv: {2 * len(data)} rows for GB (electricitymaps, direct+lifecycle, "
                           f"source electricitymaps-export, 2023-01-01 00:00 to 2024-01-01 00:00 UTC): "
                           f"{2 * len(data)} new, 0 updated")
    assert "store GB" in err  # the progress bar went to stderr
    for kind in ("direct", "lifecycle"):
        stored = GridIntensity.objects.filter(zone="GB", kind=kind, source="electricitymaps-export")
        assert stored.count() == len(data)
        assert stored.aggregate(total=Sum("intensity_g_per_kwh"))["total"] == expected_sum[kind]
        assert stored.filter(is_estimated=True).count() == expected_estimated
    first = GridIntensity.objects.get(zone="GB", kind="lifecycle", start=datetime(2023, 1, 1, tzinfo=UTC))
    assert first.end == datetime(2023, 1, 1, 1, tzinfo=UTC)
    assert first.intensity_g_per_kwh == Decimal(data[0][col["Carbon Intensity gCO₂eq/kWh (LCA)"]]).quantize(Q)

    out, _ = run(EM_GB, "--zone", "GB", "--no-progress")
    assert out.strip().endswith(f"0 new, {2 * len(data)} updated")
    assert GridIntensity.objects.count() == 2 * len(data)


@pytest.mark.django_db
def test_electricitymaps_export_single_kind(tmp_path):
    path = excerpt(tmp_path, EM_DE, range(2, 26))  # the first 24 hours
    out, _ = run(path, "--zone", "DE", "--kind", "direct", "--no-progress")
    assert "24 rows for DE (electricitymaps, direct, " in out
    assert set(GridIntensity.objects.values_list("kind", flat=True)) == {"direct"}
    assert GridIntensity.objects.count() == 24


@pytest.mark.django_db
def test_timeseries_import_of_the_lets_wait_awhile_series():
    data = read_rows(LWA_FR)[1:]
    out, _ = run(LWA_FR, "--zone", "FR", "--source", "lets-wait-awhile", "--no-progress")
    assert out.strip() == (f"fr_ci.csv: {len(data)} rows for FR (timeseries, lifecycle, source lets-wait-awhile, "
                           f"2019-12-20 00:00 to 2021-01-09 23:00 UTC): {len(data)} new, 0 updated")
    stored = GridIntensity.objects.filter(zone="FR", source="lets-wait-awhile", kind="lifecycle")
    assert stored.count() == len(data)
    first = stored.order_by("start").first()
    assert (first.start, first.end) == (datetime(2019, 12, 20, tzinfo=UTC), datetime(2019, 12, 20, 0, 30, tzinfo=UTC))
    assert first.intensity_g_per_kwh == Decimal(data[0][1]).quantize(Q)
    assert stored.aggregate(total=Sum("intensity_g_per_kwh"))["total"] == sum(Decimal(r[1]).quantize(Q) for r in data)

    run(LWA_FR, "--zone", "FR", "--source", "lets-wait-awhile", "--no-progress")
    assert GridIntensity.objects.count() == len(data)


@pytest.mark.django_db
def test_timeseries_mixed_steps_last_until_the_next_row(tmp_path):
    # gb_ci.csv switches from 30-minute to 15-minute steps on 2020-10-31 (line 15171).
    path = excerpt(tmp_path, LWA_GB, range(15160, 15176))
    run(path, "--zone", "GB", "--format", "timeseries", "--no-progress")
    stored = list(GridIntensity.objects.order_by("start").values_list("start", "end"))
    lengths = [end - start for start, end in stored]
    assert lengths == [timedelta(minutes=30)] * 10 + [timedelta(minutes=15)] * 6
    assert stored[0][0] == datetime.fromisoformat(read_rows(path)[1][0]).replace(tzinfo=UTC)


@pytest.mark.django_db
def test_timeseries_local_time_zone_is_converted_to_utc(tmp_path):
    path = excerpt(tmp_path, LWA_GB, range(10000, 10004))  # 2020-07-13, British Summer Time
    naive = datetime.fromisoformat(read_rows(path)[1][0])
    run(path, "--zone", "GB", "--timezone", "Europe/London", "--no-progress")
    assert GridIntensity.objects.order_by("start").first().start == naive.replace(tzinfo=UTC) - timedelta(hours=1)


@pytest.mark.django_db
def test_a_time_skipped_by_the_clock_change_is_rejected(tmp_path):
    path = excerpt(tmp_path, LWA_GB, range(4800, 4806), name="gb_spring.csv")  # 2020-03-29 around 01:00
    with pytest.raises(CommandError) as excinfo:
        run(path, "--zone", "GB", "--timezone", "Europe/London", "--no-progress")
    assert str(excinfo.value) == (f"{path}:6: 2020-03-29 01:00:00 does not exist in Europe/London "
                                  "(clocks go forward then); check --timezone")
    assert GridIntensity.objects.count() == 0


EM_HEADER = ("Datetime (UTC),Country,Zone Name,Zone Id,Carbon Intensity gCO₂eq/kWh (direct),"
             "Carbon Intensity gCO₂eq/kWh (LCA),Low Carbon Percentage,Renewable Percentage,Data Source,"
             "Data Estimated,Data Estimation Method\n")
EM_ROW = "2023-01-01 0{h}:00:00,Germany,Germany,DE,{d},{l},83.79,78.42,entsoe.eu,false,\n"
TS_OK = "Time,Carbon Intensity\n2020-01-01 00:00:00,100.5\n2020-01-01 00:30:00,101.5\n"


@pytest.mark.django_db
@pytest.mark.parametrize(("text", "args", "message"), [
    (TS_OK + "2020-01-01 01:00:00,abc\n", [], "{path}:4: Carbon Intensity 'abc' is not a number"),
    (TS_OK + "2020-01-01 01:00:00,-3\n", [], "{path}:4: Carbon Intensity -3 is outside 0..5000 gCO2e/kWh"),
    (TS_OK + "2020-01-01 01:00:00,nan\n", [], "{path}:4: Carbon Intensity 'nan' is not a finite number"),
    (TS_OK + "2020-01-01 01:00:00\n", [], "{path}:4: expected 2 fields, found 1"),
    (TS_OK + "2020-01-01 00:30:00,99\n", [],
     "{path}:4: 2020-01-01 00:30:00 is not after the previous row (line 3); "
     "rows must be in time order without repeats"),
    (TS_OK + "01/01/2020 01:00,99\n", [], "{path}:4: time '01/01/2020 01:00' is not YYYY-MM-DD HH:MM:SS"),
    ("Time,Carbon Intensity\n2020-01-01 00:00:00,100\n", [], "{path}: need at least two rows to tell the time step"),
    ("when,what\n2020-01-01 00:00:00,100\n", [], "{path}:1: unknown header 'when,what'; expected an Electricity "
                                                  "Maps export or 'Time,Carbon Intensity'"),
    ("", [], "{path}:1: the file is empty"),
    (TS_OK, ["--kind", "both"], "--kind: a Time,Carbon Intensity series holds one kind; choose direct or lifecycle"),
    (TS_OK, ["--timezone", "Mars/Olympus"], "--timezone: unknown time zone 'Mars/Olympus'; use an IANA name like "
                                            "UTC or Europe/London"),
    (TS_OK, ["--format", "electricitymaps"], "{path}:1: missing column(s): datetime (utc), zone id, carbon intensity "
                                             "gco2eq/kwh (direct), carbon intensity gco2eq/kwh (lca), data estimated"),
    (EM_HEADER + EM_ROW.format(h=0, d=140, l=185) + EM_ROW.format(h=1, d="", l=185), [],
     "{path}:3: direct intensity '' is not a number"),
    (EM_HEADER + EM_ROW.format(h=0, d=140, l=185) + EM_ROW.format(h=0, d=141, l=186), [],
     "{path}:3: 2023-01-01 00:00 UTC repeats line 2"),
    (EM_HEADER + EM_ROW.format(h=0, d=140, l=185).replace(",false,", ",maybe,"), [],
     "{path}:2: Data Estimated 'maybe' is not true or false"),
    (EM_HEADER + EM_ROW.format(h=0, d=140, l=185).replace(",DE,", ",FR,"), [],
     "{path}:2: Zone Id is 'FR', but --zone is 'DE'"),
    (EM_HEADER + EM_ROW.format(h=0, d=140, l=185).replace(",entsoe.eu", ""), [],
     "{path}:2: expected 11 fields, found 10"),
])
def test_malformed_files_fail_with_file_and_line_and_write_nothing(tmp_path, text, args, message):
    path = write(tmp_path, text)
    with pytest.raises(CommandError) as excinfo:
        run(path, "--zone", "DE", "--no-progress", *args)
    assert str(excinfo.value) == message.format(path=path)
    assert GridIntensity.objects.count() == 0


@pytest.mark.django_db
def test_command_rejects_a_bad_zone_and_a_missing_file(tmp_path):
    with pytest.raises(CommandError, match="zone 'germany' is not a zone id like GB, DE or US-CAL-CISO"):
        run(LWA_FR, "--zone", "germany")
    with pytest.raises(CommandError, match=r"nope.csv: no such file"):
        run(tmp_path / "nope.csv", "--zone", "DE")


def test_command_exits_non_zero_with_one_line(tmp_path):
    path = write(tmp_path, TS_OK + "2020-01-01 01:00:00,abc\n")
    # The file is checked before the database is touched, so an empty SQLite database will do.
    env = {**os.environ, "DJANGO_DEBUG": "1", "DJANGO_SETTINGS_MODULE": "config.settings",
           "DATABASE_URL": "sqlite:///:memory:"}
    proc = subprocess.run(
        [sys.executable, "manage.py", "import_grid_intensity", str(path), "--zone", "DE", "--no-progress"],
        cwd=ROOT, capture_output=True, text=True, env=env,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"CommandError: {path}:4: Carbon Intensity 'abc' is not a number"
