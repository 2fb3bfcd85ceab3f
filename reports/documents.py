"""Report documents: inputs -> fingerprint, HTML (Django templates), PDF (reports.pdf), CSV.

Every document is drawn from its inputs (reports.selectors.*_inputs) and nothing else:
no clock, no database. The fingerprint is the SHA-256 of the canonical JSON of the
inputs (keys sorted, no spaces, UTF-8), and that exact JSON is embedded in the PDF as
the attachment `inputs.json`, so anyone can check a report: hash the attachment and
compare with the fingerprint printed on it, or re-generate and compare bytes.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from django.template.loader import render_to_string

from billing.money import currency_exponent
from carbon import units
from inference.usage import sci_ug_per_prediction
from reports import charts
from reports import formatting as fmt
from reports.pdf import RenderedPdf, pdf_render

MONTH_NAMES = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
MONTH_LONG = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
              "November", "December"]
MODE_LABELS = {"standard": "Standard", "efficiency": "Efficiency", "accurate": "Accurate"}


@dataclass(frozen=True)
class Document:
    inputs: dict
    canonical: bytes
    fingerprint: str
    pdf: RenderedPdf
    csv: str = ""


def inputs_canonical(inputs: dict) -> bytes:
    return json.dumps(inputs, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def inputs_fingerprint(inputs: dict) -> str:
    return hashlib.sha256(inputs_canonical(inputs)).hexdigest()


def _dt(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value.replace("Z", "+00:00"))


def _month_label(label: str, long: bool = False) -> str:
    year, month = label.split("-")
    return f"{(MONTH_LONG if long else MONTH_NAMES)[int(month) - 1]} {year}"


def _period_text(period: dict) -> str:
    """'1 January – 31 December 2025', or for a month 'November 2026'."""
    start, end = _dt(period["start"]), _dt(period["end"])
    last = datetime.fromtimestamp(end.timestamp() - 1, UTC)
    if len(period["label"]) == 7:
        return _month_label(period["label"], long=True)
    return f"1 {MONTH_LONG[start.month - 1]} – {last.day} {MONTH_LONG[last.month - 1]} {last.year}"


def _period_phrase(period: dict) -> str:
    """'in 2025', 'from 1 January to 30 November 2026' (year to date), 'in November 2026'."""
    start, end = _dt(period["start"]), _dt(period["end"])
    last = datetime.fromtimestamp(end.timestamp() - 1, UTC)
    if len(period["label"]) == 7:
        return f"in {_month_label(period['label'], long=True)}"
    if (last.month, last.day) == (12, 31):
        return f"in {start.year}"
    return f"from 1 {MONTH_LONG[start.month - 1]} to {last.day} {MONTH_LONG[last.month - 1]} {last.year}"


def _css_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'


def _render(template: str, context: dict, *, inputs: dict, canonical: bytes, fingerprint: str,
            created_at: datetime) -> RenderedPdf:
    context = {**context, "fingerprint": fingerprint, "fingerprint_short": fingerprint[:16],
               "css_title": _css_string(context["running_title"]),
               "css_tenant": _css_string(context.get("running_tenant", "")),
               "css_fingerprint": _css_string(f"Fingerprint {fingerprint[:16]}…")}
    html = render_to_string(template, context)
    return pdf_render(html=html, fingerprint=fingerprint, created_at=created_at,
                      attachments={"inputs.json": canonical})


def _intensity_g_per_kwh(co2e_ug: int, energy_uj: int) -> str:
    """Energy-weighted grid intensity: operational CO2e over energy, gCO2e/kWh."""
    if not energy_uj:
        return "–"
    grams = units.ug_to_g(co2e_ug)
    return fmt.grouped(grams / units.uj_to_kwh(energy_uj), 0)


def _sci(co2e_ug: int, embodied_ug: int, predictions: int) -> tuple[str, str]:
    """(value, unit) of SCI per prediction: µg or mg CO2e."""
    sci = sci_ug_per_prediction(co2e_ug=co2e_ug, embodied_co2e_ug=embodied_ug, predictions=predictions)
    if sci is None:
        return "–", ""
    if sci >= 1000:
        return fmt.significant(sci / 1000, 3), "mg CO₂e"
    return fmt.significant(sci, 3), "µg CO₂e"


def _share(part: int, whole: int, places: int = 1) -> str:
    if not whole:
        return "–"
    return fmt.percent(Decimal(part) * 100 / Decimal(whole), places)


# --- annual carbon report -------------------------------------------------------------------


def carbon_report_document(inputs: dict) -> Document:
    canonical = inputs_canonical(inputs)
    fingerprint = hashlib.sha256(canonical).hexdigest()
    tenant, period, totals = inputs["tenant"], inputs["period"], inputs["totals"]
    total_co2e = totals["co2e_ug"] + totals["embodied_co2e_ug"]
    empty = totals["predictions"] == 0 and inputs["provenance"]["ledger_records"] == 0

    months = inputs["months"]
    month_mass = fmt.mass_unit(max([m["co2e_ug"] + m["embodied_co2e_ug"] for m in months] + [total_co2e // 12, 1]))
    month_energy = fmt.energy_unit(max([m["energy_uj"] for m in months] + [1]))
    month_rows = []
    for m in months:
        sci_value, sci_unit = _sci(m["co2e_ug"], m["embodied_co2e_ug"], m["predictions"])
        month_rows.append({
            "label": _month_label(m["month"]), "predictions": fmt.grouped(m["predictions"]),
            "energy": fmt.energy(m["energy_uj"], month_energy), "operational": fmt.mass(m["co2e_ug"], month_mass),
            "embodied": fmt.mass(m["embodied_co2e_ug"], month_mass),
            "total": fmt.mass(m["co2e_ug"] + m["embodied_co2e_ug"], month_mass),
            "intensity": _intensity_g_per_kwh(m["co2e_ug"], m["energy_uj"]),
            "sci": f"{sci_value}" if not sci_unit else f"{sci_value} {sci_unit.split()[0]}",
        })
    sci_value, sci_unit = _sci(totals["co2e_ug"], totals["embodied_co2e_ug"], totals["predictions"])

    savings = inputs["savings"]
    green_ug = savings["green_scheduling"]["co2e_avoided_ug"]
    efficiency_ug = savings["efficiency_mode"]["co2e_avoided_ug"]
    green_jobs = [j for j in inputs["batch_jobs"] if j["tier"] == "green"]
    green_run_now_ug = sum(j["run_now_co2e_ug"] for j in green_jobs)
    # savings_for_period counts every efficiency-mode row (online and batch).
    efficiency_energy_used = sum(r["energy_uj"] for r in inputs["by_variant"] if r["mode"] == "efficiency")
    efficiency_avoided_uj = savings["efficiency_mode"]["energy_avoided_uj"]

    avoided_unit = fmt.mass_unit(green_ug + efficiency_ug)
    context = {
        "running_title": f"Annual carbon report {period['label']}", "running_tenant": tenant["name"] or tenant["slug"],
        "tenant": tenant, "period": period, "period_text": _period_text(period),
        "period_phrase": _period_phrase(period),
        "highlights": [] if empty else _highlights(inputs, month_mass),
        "year_to_date": _dt(period["end"]).month != 1 or _dt(period["end"]).day != 1,
        "empty": empty,
        "kpis": [
            {"label": "Predictions served", "value": fmt.grouped(totals["predictions"]), "unit": ""},
            {"label": "Energy used", "value": fmt.energy(totals["energy_uj"], fmt.energy_unit(totals["energy_uj"]), 2),
             "unit": fmt.energy_unit(totals["energy_uj"])[0]},
            {"label": "Total emissions", "value": fmt.mass(total_co2e, fmt.mass_unit(total_co2e)),
             "unit": f"{fmt.mass_unit(total_co2e)[0]} CO₂e"},
            {"label": "SCI per prediction", "value": sci_value, "unit": sci_unit},
            {"label": "Avg grid intensity", "value": _intensity_g_per_kwh(totals["co2e_ug"], totals["energy_uj"]),
             "unit": "gCO₂e/kWh"},
            {"label": "Emissions avoided", "value": fmt.mass(green_ug + efficiency_ug, avoided_unit),
             "unit": f"{avoided_unit[0]} CO₂e"},
        ],
        "operational_share": _share(totals["co2e_ug"], total_co2e),
        "embodied_share": _share(totals["embodied_co2e_ug"], total_co2e),
        "operational_total": fmt.mass_auto(totals["co2e_ug"]),
        "embodied_total": fmt.mass_auto(totals["embodied_co2e_ug"]),
        "month_rows": month_rows, "month_mass_unit": month_mass[0], "month_energy_unit": month_energy[0],
        "month_total": {
            "predictions": fmt.grouped(totals["predictions"]), "energy": fmt.energy(totals["energy_uj"], month_energy),
            "operational": fmt.mass(totals["co2e_ug"], month_mass),
            "embodied": fmt.mass(totals["embodied_co2e_ug"], month_mass), "total": fmt.mass(total_co2e, month_mass),
            "intensity": _intensity_g_per_kwh(totals["co2e_ug"], totals["energy_uj"]),
            "sci": sci_value if not sci_unit else f"{sci_value} {sci_unit.split()[0]}",
        },
        "savings": {
            "green_value": fmt.mass_auto(green_ug), "green_jobs": len(green_jobs),
            "green_share": _share(green_ug, green_run_now_ug),
            "green_counterfactual": savings["green_scheduling"]["counterfactual"],
            "green_run_now": fmt.mass_auto(green_run_now_ug),
            "green_actual": fmt.mass_auto(green_run_now_ug - green_ug),
            "efficiency_value": fmt.mass_auto(efficiency_ug),
            "efficiency_energy": fmt.energy_auto(efficiency_avoided_uj, 3),
            "efficiency_predictions": fmt.grouped(savings["efficiency_mode"]["predictions"]),
            "efficiency_share": _share(efficiency_avoided_uj, efficiency_energy_used + efficiency_avoided_uj),
            "efficiency_counterfactual": savings["efficiency_mode"]["counterfactual"],
            "total": fmt.mass_auto(green_ug + efficiency_ug),
            "total_share": _share(green_ug + efficiency_ug, total_co2e + green_ug + efficiency_ug),
        },
        "batch": _batch_context(inputs["batch_jobs"], _dt(period["start"]), _dt(period["end"])),
        "variants": _variant_context(inputs["by_variant"], totals),
        "models": _models_context(inputs["models"], totals),
        "methodology": _methodology_context(inputs),
        "provenance": {
            "records": fmt.grouped(inputs["provenance"]["ledger_records"]),
            "first": _hour_text(inputs["provenance"]["first_hour"]),
            "last": _hour_text(inputs["provenance"]["last_hour"]),
            "batch_jobs": inputs["provenance"]["batch_jobs"],
        },
    }
    if not empty:
        context["monthly_chart"] = charts.svg_data_uri(charts.monthly_co2e_chart(
            labels=[MONTH_NAMES[int(m["month"][5:]) - 1] for m in months],
            operational=[m["co2e_ug"] / month_mass[1] for m in months],
            embodied=[m["embodied_co2e_ug"] / month_mass[1] for m in months], unit=month_mass[0]))
    pdf = _render("reports/carbon_report.html", context, inputs=inputs, canonical=canonical, fingerprint=fingerprint,
                  created_at=_dt(period["end"]))
    return Document(inputs=inputs, canonical=canonical, fingerprint=fingerprint, pdf=pdf)


def _highlights(inputs: dict, month_mass: tuple[str, int]) -> list[str]:
    """A few plain sentences for the cover page, each from figures elsewhere in the report."""
    out = []
    online = [r for r in inputs["by_variant"] if r["source"] == "online"]
    online_predictions = sum(r["predictions"] for r in online)
    efficiency = sum(r["predictions"] for r in online if r["mode"] == "efficiency")
    if efficiency:
        avoided = inputs["savings"]["efficiency_mode"]["energy_avoided_uj"]
        out.append(f"{_share(efficiency, online_predictions)} of online predictions ran in efficiency mode; with batch "
                   f"jobs in that mode they used {fmt.energy_auto(avoided)} less energy than the default models "
                   "would have.")
    green = [j for j in inputs["batch_jobs"] if j["tier"] == "green"]
    if green:
        saved = sum(j["saved_co2e_ug"] for j in green)
        run_now = sum(j["run_now_co2e_ug"] for j in green)
        out.append(f"{len(green)} green-tier batch job{'s' * (len(green) != 1)} ran in lower-carbon windows, emitting "
                   f"{_share(saved, run_now)} less CO₂e than running at once would have.")
    active = [m for m in inputs["months"] if m["predictions"]]
    if len(active) > 1:
        def total(m):
            return m["co2e_ug"] + m["embodied_co2e_ug"]

        high, low = max(active, key=total), min(active, key=total)
        out.append(f"Emissions were highest in {_month_label(high['month'], long=True)} "
                   f"({fmt.mass(total(high), month_mass)} {month_mass[0]}) and lowest in "
                   f"{_month_label(low['month'], long=True)} ({fmt.mass(total(low), month_mass)} {month_mass[0]}).")
        with_energy = [m for m in active if m["energy_uj"]]
        cleanest = min(with_energy, key=lambda m: Decimal(m["co2e_ug"]) / m["energy_uj"])
        dirtiest = max(with_energy, key=lambda m: Decimal(m["co2e_ug"]) / m["energy_uj"])
        out.append(f"The grid in zone {inputs['tenant']['grid_zone']} averaged "
                   f"{_intensity_g_per_kwh(cleanest['co2e_ug'], cleanest['energy_uj'])} gCO₂e/kWh in "
                   f"{_month_label(cleanest['month'], long=True)} and "
                   f"{_intensity_g_per_kwh(dirtiest['co2e_ug'], dirtiest['energy_uj'])} gCO₂e/kWh in "
                   f"{_month_label(dirtiest['month'], long=True)}, weighted by this account's energy use.")
    return out


def _hour_text(value: str | None) -> str:
    if value is None:
        return "–"
    at = _dt(value)
    return f"{at.day} {MONTH_NAMES[at.month - 1]} {at.year} {at:%H:%M} UTC"


def _batch_context(jobs: list[dict], period_start: datetime, period_end: datetime) -> dict:
    green = [j for j in jobs if j["tier"] == "green"]
    measurable = [j for j in green if j["plan_measurable"]]
    out = {"jobs": len(jobs), "green": len(green), "measurable": len(measurable), "chart": None}
    if green:
        energy = sum(j["energy_uj"] for j in green)
        out.update(
            energy=fmt.energy_auto(energy, 3),
            run_now_mean=_weighted([(Decimal(j["run_now_g_per_kwh"]), j["energy_uj"]) for j in green]),
            planned_mean=_weighted([(Decimal(j["actual_g_per_kwh"] or j["planned_g_per_kwh"]), j["energy_uj"])
                                    for j in green]),
            saved=fmt.mass_auto(sum(j["saved_co2e_ug"] for j in green)),
        )
    if measurable:
        points = _batch_points(measurable)
        out["weekly"] = len(points) < len(measurable)
        out["chart"] = charts.svg_data_uri(charts.batch_intensity_chart(
            starts=[p[0] for p in points], run_now=[p[1] for p in points], planned=[p[2] for p in points],
            start=period_start, end=period_end))
    return out


# Up to this many jobs are drawn one by one; beyond, one point per ISO week (energy-weighted
# means), which stays legible and keeps the SVG small (each point is an SVG node, and
# WeasyPrint draws ~1,000 nodes a second).
BATCH_CHART_MAX_JOBS = 60


def _batch_points(jobs: list[dict]) -> list[tuple[datetime, float, float]]:
    def as_run(job):
        return Decimal(job["actual_g_per_kwh"] or job["planned_g_per_kwh"])

    if len(jobs) <= BATCH_CHART_MAX_JOBS:
        return [(_dt(j["planned_start"]), float(j["run_now_g_per_kwh"]), float(as_run(j))) for j in jobs]
    weeks: dict[tuple[int, int], list[dict]] = {}
    for job in jobs:
        weeks.setdefault(_dt(job["planned_start"]).isocalendar()[:2], []).append(job)
    points = []
    for (year, week), members in sorted(weeks.items()):
        weight = sum(j["energy_uj"] for j in members) or len(members)

        def mean(value, members=members, weight=weight):
            return float(sum(value(j) * (j["energy_uj"] or 1) for j in members) / weight)

        middle = datetime.fromisocalendar(year, week, 4).replace(tzinfo=UTC)
        first = min(_dt(j["planned_start"]) for j in members)
        points.append((middle if middle.year == first.year else first,
                       mean(lambda j: Decimal(j["run_now_g_per_kwh"])), mean(as_run)))
    return points


def _weighted(pairs: list[tuple[Decimal, int]]) -> str:
    weight = sum(w for _, w in pairs)
    if not weight:
        return "–"
    return fmt.grouped(sum(v * w for v, w in pairs) / weight, 0)


def _variant_context(rows: list[dict], totals: dict) -> dict:
    merged: dict[tuple[str, str, str], dict] = {}
    for row in rows:
        mode = row["mode"] if row["source"] == "online" else "batch"
        key = (row["family"], row["variant"], mode)
        entry = merged.setdefault(key, {"predictions": 0, "energy_uj": 0, "co2e_ug": 0})
        entry["predictions"] += row["predictions"]
        entry["energy_uj"] += row["energy_uj"]
        entry["co2e_ug"] += row["co2e_ug"] + row["embodied_co2e_ug"]
    ordered = sorted(merged.items(), key=lambda item: -item[1]["energy_uj"])
    unit = fmt.energy_unit(max([v["energy_uj"] for _, v in ordered] + [1]))
    mass_unit = fmt.mass_unit(max([v["co2e_ug"] for _, v in ordered] + [1]))
    table = [{
        "model": f"{family} / {variant}", "mode": mode, "predictions": fmt.grouped(v["predictions"]),
        "energy": fmt.energy(v["energy_uj"], unit), "co2e": fmt.mass(v["co2e_ug"], mass_unit),
        "share": _share(v["energy_uj"], totals["energy_uj"]),
        "per_1k": fmt.wh_per_1k(v["energy_uj"] * 1000 // v["predictions"]) if v["predictions"] else "–",
    } for (family, variant, mode), v in ordered]
    chart = None
    if ordered:
        chart = charts.svg_data_uri(charts.energy_by_variant_chart(
            rows=[(f"{family} / {variant}" + (" (batch)" if mode == "batch" else ""), mode, v["energy_uj"] / unit[1])
                  for (family, variant, mode), v in ordered],
            unit=unit[0]))
    return {"table": table, "unit": unit[0], "mass_unit": mass_unit[0], "chart": chart}


def _models_context(models: list[dict], totals: dict) -> list[dict]:
    out = []
    for m in sorted(models, key=lambda m: (m["family"], -m["predictions"])):
        out.append({
            "name": f"{m['family']} / {m['variant']}", "family": m["family"], "variant": m["variant"],
            "default": m["is_default"], "technique": m["technique"],
            "accuracy": fmt.percent(Decimal(m["accuracy"]) * 100, 2), "metric": m["accuracy_metric"],
            "wh_per_1k": fmt.wh_per_1k(m["energy_per_1k_uj"]),
            "accuracy_per_kwh": "–" if m["accuracy_per_kwh"] is None else fmt.grouped(Decimal(m["accuracy_per_kwh"])),
            "predictions": fmt.grouped(m["predictions"]), "share": _share(m["predictions"], totals["predictions"]),
            "latency": fmt.latency_ms(m["latency_p95_us"]), "batch": m["profile_batch_size"],
            "modes": ", ".join(m["modes"]), "version": m["model_version"], "dataset": m["dataset"],
            "dataset_sha": m["dataset_sha256"][:12], "training_energy": fmt.energy_auto(m["training_energy_uj"], 3),
            "training_co2e": fmt.mass_auto(m["training_co2e_ug"]), "energy_method": m["energy_method"],
        })
    return out


def _methodology_context(inputs: dict) -> dict:
    totals = inputs["totals"]
    method = inputs["methodology"]
    total_co2e = totals["co2e_ug"] + totals["embodied_co2e_ug"]
    kinds = sorted({s["kind"] for s in method["intensity_sources"]})
    embodied_rate = "–"
    if totals["cpu_us"]:
        embodied_rate = fmt.grouped(Decimal(totals["embodied_co2e_ug"]) * 1_000_000 / Decimal(totals["cpu_us"]), 1)
    return {
        "energy_methods": [{"method": m["method"], "records": fmt.grouped(m["records"]),
                            "predictions": _share(m["predictions"], totals["predictions"]),
                            "energy": _share(m["energy_uj"], totals["energy_uj"])} for m in method["energy_methods"]],
        "intensity_sources": [{"source": s["source"], "kind": s["kind"], "qualifier": s["qualifier"] or "measured",
                               "records": fmt.grouped(s["records"]),
                               "energy": _share(s["energy_uj"], totals["energy_uj"]),
                               "intensity": _intensity_g_per_kwh(s["co2e_ug"], s["energy_uj"])}
                              for s in method["intensity_sources"]],
        "kinds": kinds, "mixed_kinds": len([k for k in kinds if k != "unknown"]) > 1,
        "pue": ", ".join(method["pue"]) or "not stated in the measurement method",
        "embodied_share": _share(totals["embodied_co2e_ug"], total_co2e),
        "embodied_rate": embodied_rate,
    }


# --- SLA statement --------------------------------------------------------------------------------


OUTCOME_TEXT = {"met": "Met", "breached": "Breached", "no_usage": "No usage"}
LATENCY_TEXT = {"met": "met", "missed": "missed", "not_set": "no target", "no_usage": "–"}


def _evaluation_row(e: dict) -> dict:
    span_start, span_end = _dt(e["span_start"]), _dt(e["span_end"])
    month_start = datetime(span_start.year, span_start.month, 1, tzinfo=UTC)
    partial = span_start != month_start or (span_end.day != 1 or span_end.hour != 0)
    invoice = e["invoice"]
    if e["credit_minor"] == 0:
        invoice_text = "–"
    elif invoice is None:
        invoice_text = "on the next invoice run"
    elif invoice["credit_line_position"] is None:
        invoice_text = f"not on invoice #{invoice['id']} (rated before evaluation)"
    else:
        invoice_text = f"invoice #{invoice['id']}, line {invoice['credit_line_position']}"
    last = datetime.fromtimestamp(span_end.timestamp() - 1, UTC)
    return {
        "month": _month_label(e["month"]),
        "span": f"{span_start.day}–{last.day} {MONTH_NAMES[span_start.month - 1]}" if partial else "",
        "model": e["family"], "mode": MODE_LABELS.get(e["mode"], e["mode"]),
        "target": fmt.wh_per_1k(e["target_energy_per_1k_uj"]),
        "measured": fmt.wh_per_1k(e["measured_energy_per_1k_uj"]),
        "margin": fmt.percent(None if e["margin_percent"] is None else Decimal(e["margin_percent"]), 2, signed=True),
        "outcome": e["outcome"], "outcome_text": OUTCOME_TEXT[e["outcome"]] + (
            f" ({e['breach_band']})" if e["breach_band"] else ""),
        "predictions": fmt.grouped(e["predictions"]),
        "latency_target": fmt.latency_ms(e["target_latency_p95_us"]),
        "latency_profiled": fmt.latency_ms(e["profiled_latency_p95_us"]),
        "latency_outcome": LATENCY_TEXT[e["latency_outcome"]],
        "charges": fmt.money(e["charges_minor"], e["currency"]) if e["outcome"] == "breached" else "–",
        "credit_percent": fmt.percent(Decimal(e["credit_percent"]), 0) if e["credit_minor"] else "–",
        # Shown as the amount credited (positive); the invoice line carries it negative.
        "credit": fmt.money(-e["credit_minor"], e["currency"]) if e["credit_minor"] else "–",
        "invoice": invoice_text,
        "schedule": (f"≤ target: met; up to {fmt.percent(Decimal(e['minor_breach_limit_percent']), 0)} over: "
                     f"{fmt.percent(Decimal(e['minor_credit_percent']), 0)} credit; beyond: "
                     f"{fmt.percent(Decimal(e['major_credit_percent']), 0)}"),
    }


def _credit_totals(evaluations: list[dict]) -> list[str]:
    by_currency: dict[str, int] = {}
    for e in evaluations:
        if e["credit_minor"]:
            by_currency[e["currency"]] = by_currency.get(e["currency"], 0) + e["credit_minor"]
    return [fmt.money(-amount, currency) for currency, amount in sorted(by_currency.items())]


def sla_statement_document(inputs: dict) -> Document:
    canonical = inputs_canonical(inputs)
    fingerprint = hashlib.sha256(canonical).hexdigest()
    tenant, period, evaluations = inputs["tenant"], inputs["period"], inputs["evaluations"]
    rows = [_evaluation_row(e) for e in evaluations]
    schedules = sorted({r["schedule"] for r in rows})
    latency_bases = sorted({e["latency_basis"] for e in evaluations if e["latency_basis"]})
    credits = _credit_totals(evaluations)
    context = {
        "running_title": f"SLA compliance statement {period['label']}",
        "running_tenant": tenant["name"] or tenant["slug"],
        "tenant": tenant, "period": period, "period_text": _period_text(period), "rows": rows,
        "period_title": _month_label(period["label"], long=True) if len(period["label"]) == 7 else period["label"],
        "kpis": [
            {"label": "Targets evaluated", "value": str(len(evaluations)), "unit": ""},
            {"label": "Met", "value": str(sum(e["outcome"] == "met" for e in evaluations)), "unit": ""},
            {"label": "Breached", "value": str(sum(e["outcome"] == "breached" for e in evaluations)), "unit": ""},
            {"label": "Credits issued", "value": credits[0] if credits else fmt.money(0, tenant["currency"]),
             "unit": ""},
        ],
        "credits": credits, "schedules": schedules, "latency_bases": latency_bases,
        "months_without_terms": [_month_label(m) for m in inputs["months_without_terms"]],
        "has_partial": any(r["span"] for r in rows),
    }
    pdf = _render("reports/sla_statement.html", context, inputs=inputs, canonical=canonical, fingerprint=fingerprint,
                  created_at=_dt(period["end"]))
    return Document(inputs=inputs, canonical=canonical, fingerprint=fingerprint, pdf=pdf)


# --- invoices -------------------------------------------------------------------------------------


def _major(amount_minor: Decimal, currency: str) -> str:
    """A possibly fractional minor-unit amount in major units, at least the currency's digits."""
    exponent = currency_exponent(currency)
    major = Decimal(amount_minor).scaleb(-exponent).normalize()
    return f"{currency} {fmt.grouped(major, max(exponent, -major.as_tuple().exponent))}"


def _invoice_line_row(line: dict, invoice: dict, mass_unit: tuple[str, int]) -> dict:
    currency = invoice["currency"]
    quantity, price, divisor = Decimal(line["quantity"]), Decimal(line["unit_price_minor"]), line["unit_divisor"]
    kind = line["kind"]
    if kind in ("predictions", "batch_predictions"):
        quantity_text, rate = fmt.grouped(quantity), f"{_major(price, currency)} / {fmt.grouped(divisor)}"
    elif kind == "base_fee":
        quantity_text = f"{fmt.grouped(quantity * 100 / divisor, 1)}% of month"
        rate = f"{_major(price, currency)} / month"
    elif kind == "green_premium":
        quantity_text, rate = _major(quantity, currency), f"{fmt.grouped(price * 100 / divisor, 1)}%"
    else:  # sla_credit: one credit of its amount
        quantity_text, rate = "–", "–"
    start, end = _dt(line["span_start"]), _dt(line["span_end"])
    whole = (line["span_start"], line["span_end"]) == (invoice["start"], invoice["end"])
    return {
        "position": line["position"], "kind": kind, "description": line["description"],
        "span": "" if whole else f"{start:%-d %b %H:%M} – {end:%-d %b %H:%M}", "quantity": quantity_text, "rate": rate,
        "energy": fmt.kwh(line["energy_uj"]) if line["energy_uj"] else "–",
        "co2e": fmt.mass(line["co2e_ug"], mass_unit) if line["co2e_ug"] else "–",
        "amount": fmt.money(line["amount_minor"], currency),
    }


def invoice_document(inputs: dict, *, issuer_name: str, issuer_address: list[str]) -> Document:
    """An invoice as PDF (reports.selectors.invoice_inputs). The issuer is the operator's
    legal name and address (settings), printed but not part of the fingerprint's inputs."""
    canonical = inputs_canonical(inputs)
    fingerprint = hashlib.sha256(canonical).hexdigest()
    tenant, invoice, lines = inputs["tenant"], inputs["invoice"], inputs["lines"]
    currency = invoice["currency"]
    mass_unit = fmt.mass_unit(max([invoice["co2e_ug"], *(line["co2e_ug"] for line in lines)]))
    period = {"label": invoice["period"], "start": invoice["start"], "end": invoice["end"]}
    paid = _dt(invoice["paid_at"])
    context = {
        "running_title": f"Invoice {invoice['id']} ({invoice['period']})",
        "running_tenant": tenant["name"] or tenant["slug"],
        "tenant": tenant, "invoice": invoice, "issuer": {"name": issuer_name, "address": issuer_address},
        "period_title": _month_label(invoice["period"], long=True), "period_text": _period_text(period),
        "status_text": invoice["status_text"].split(" (")[0],
        "lines": [_invoice_line_row(line, invoice, mass_unit) for line in lines],
        "mass_unit": mass_unit[0],
        "total": fmt.money(invoice["total_minor"], currency),
        "total_energy": fmt.kwh(invoice["energy_uj"]), "total_co2e": fmt.mass(invoice["co2e_ug"], mass_unit),
        "kpis": [
            {"label": "Total due" if invoice["status"] != "paid" else "Total (paid)",
             "value": fmt.money(invoice["total_minor"], currency), "unit": ""},
            {"label": "Energy billed", "value": fmt.kwh(invoice["energy_uj"]), "unit": "kWh"},
            {"label": "CO₂e of the usage billed", "value": fmt.mass_auto(invoice["co2e_ug"]), "unit": ""},
        ],
        "has_credit": any(line["kind"] == "sla_credit" for line in lines),
        "paid_text": f"{paid:%d %B %Y}" if paid else "",
    }
    pdf = _render("reports/invoice.html", context, inputs=inputs, canonical=canonical, fingerprint=fingerprint,
                  created_at=_dt(invoice["created_at"]))
    return Document(inputs=inputs, canonical=canonical, fingerprint=fingerprint, pdf=pdf)


# --- finance reports (cross-tenant) ---------------------------------------------------------------


FINANCE_SLA_COLUMNS = [
    "period", "tenant", "family", "mode", "span_start", "span_end", "target_energy_per_1k_uj", "target_wh_per_1k",
    "predictions", "energy_uj", "measured_energy_per_1k_uj", "measured_wh_per_1k", "margin_percent", "outcome",
    "breach_band", "target_latency_p95_us", "profiled_latency_p95_us", "latency_outcome", "currency",
    "charges_minor", "credit_percent", "credit_minor", "invoice_id", "invoice_status", "credit_line_position",
    "evaluation_id",
]


def _wh_exact(energy_per_1k_uj: int | None) -> str:
    if energy_per_1k_uj is None:
        return ""
    return f"{fmt.uj_to_wh(energy_per_1k_uj):.9f}"


def finance_sla_csv(inputs: dict) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(FINANCE_SLA_COLUMNS)
    for e in inputs["evaluations"]:
        invoice = e["invoice"] or {}
        writer.writerow([
            inputs["period"]["label"], e["tenant"], e["family"], e["mode"], e["span_start"], e["span_end"],
            e["target_energy_per_1k_uj"], _wh_exact(e["target_energy_per_1k_uj"]), e["predictions"], e["energy_uj"],
            "" if e["measured_energy_per_1k_uj"] is None else e["measured_energy_per_1k_uj"],
            _wh_exact(e["measured_energy_per_1k_uj"]), e["margin_percent"] or "", e["outcome"], e["breach_band"],
            e["target_latency_p95_us"] or "", e["profiled_latency_p95_us"] or "", e["latency_outcome"], e["currency"],
            e["charges_minor"], e["credit_percent"], e["credit_minor"], invoice.get("id", ""),
            invoice.get("status", ""), invoice.get("credit_line_position") or "", e["id"],
        ])
    return buffer.getvalue()


def finance_sla_document(inputs: dict) -> Document:
    canonical = inputs_canonical(inputs)
    fingerprint = hashlib.sha256(canonical).hexdigest()
    evaluations = inputs["evaluations"]
    rows = [{"tenant": e["tenant"], "tenant_name": e["tenant_name"], **_evaluation_row(e)} for e in evaluations]
    tenants = sorted({e["tenant"] for e in evaluations})
    breached_tenants = sorted({e["tenant"] for e in evaluations if e["outcome"] == "breached"})
    credits = _credit_totals(evaluations)
    context = {
        "running_title": f"Monthly SLA report {inputs['period']['label']}", "running_tenant": "Finance – internal",
        "period": inputs["period"], "period_text": _period_text(inputs["period"]), "rows": rows,
        "kpis": [
            {"label": "Tenants with SLAs", "value": str(len(tenants)), "unit": ""},
            {"label": "Targets evaluated", "value": str(len(evaluations)), "unit": ""},
            {"label": "Breached", "value": str(sum(e["outcome"] == "breached" for e in evaluations)),
             "unit": f"at {len(breached_tenants)} tenant{'s' * (len(breached_tenants) != 1)}"},
            {"label": "Credits", "value": " · ".join(credits) if credits else "none", "unit": ""},
        ],
        "not_invoiced": sum(1 for e in evaluations if e["credit_minor"] and (
            e["invoice"] is None or e["invoice"]["credit_line_position"] is None)),
    }
    pdf = _render("reports/finance_sla.html", context, inputs=inputs, canonical=canonical, fingerprint=fingerprint,
                  created_at=_dt(inputs["period"]["end"]))
    return Document(inputs=inputs, canonical=canonical, fingerprint=fingerprint, pdf=pdf, csv=finance_sla_csv(inputs))


REVENUE_COLUMNS = [
    "period", "tenant", "tier", "currency", "invoice_id", "invoice_status", "revenue_minor", "sla_credits_minor",
    "predictions", "energy_uj", "energy_kwh", "co2e_ug", "co2e_kg", "revenue_per_1k_predictions_minor",
]


def _revenue_figures(inputs: dict) -> tuple[list[dict], list[dict]]:
    """Per-tenant rows and per-currency totals (revenue = invoiced totals, net of SLA credits)."""
    rows, totals = [], {}
    for t in inputs["tenants"]:
        invoice = t["invoice"]
        currency = invoice["currency"] if invoice else t["currency"]
        revenue = invoice["total_minor"] if invoice else 0
        credits = invoice["sla_credits_minor"] if invoice else 0
        co2e = t["co2e_ug"] + t["embodied_co2e_ug"]
        per_1k = (Decimal(revenue) * 1000 / Decimal(t["predictions"])).quantize(Decimal("0.0001")) \
            if invoice and t["predictions"] else None
        rows.append({**t, "currency": currency, "revenue_minor": revenue, "credits_minor": credits, "co2e_total": co2e,
                     "per_1k_minor": per_1k})
        entry = totals.setdefault(currency, {"currency": currency, "revenue_minor": 0, "credits_minor": 0,
                                             "predictions": 0, "energy_uj": 0, "co2e_ug": 0, "tenants": 0,
                                             "active": 0, "invoiced": 0})
        entry["revenue_minor"] += revenue
        entry["credits_minor"] += credits
        entry["predictions"] += t["predictions"]
        entry["energy_uj"] += t["energy_uj"]
        entry["co2e_ug"] += co2e
        entry["tenants"] += 1
        entry["active"] += t["predictions"] > 0
        entry["invoiced"] += invoice is not None
    return rows, [totals[c] for c in sorted(totals)]


def revenue_summary_csv(inputs: dict) -> str:
    rows, _ = _revenue_figures(inputs)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(REVENUE_COLUMNS)
    for r in rows:
        invoice = r["invoice"] or {}
        writer.writerow([
            inputs["period"]["label"], r["tenant"], r["tier"], r["currency"], invoice.get("id", ""),
            invoice.get("status", "not invoiced"), r["revenue_minor"], r["credits_minor"], r["predictions"],
            # exact: 1 uJ is 2.8e-13 kWh, 1 ug is 1e-9 kg
            r["energy_uj"], f"{units.uj_to_kwh(r['energy_uj']):.12f}", r["co2e_total"],
            f"{units.ug_to_g(r['co2e_total']) / 1000:.9f}", "" if r["per_1k_minor"] is None else str(r["per_1k_minor"]),
        ])
    return buffer.getvalue()


def revenue_summary_document(inputs: dict) -> Document:
    canonical = inputs_canonical(inputs)
    fingerprint = hashlib.sha256(canonical).hexdigest()
    rows, totals = _revenue_figures(inputs)
    energy_unit = fmt.energy_unit(max([r["energy_uj"] for r in rows] + [1]))
    mass_unit = fmt.mass_unit(max([r["co2e_total"] for r in rows] + [1]))
    table = [{
        "tenant": r["tenant"], "name": r["tenant_name"], "tier": r["tier"],
        "invoice": f"#{r['invoice']['id']} {r['invoice']['status']}" if r["invoice"] else "not invoiced",
        "revenue": fmt.money(r["revenue_minor"], r["currency"]) if r["invoice"] else "–",
        "credits": fmt.money(-r["credits_minor"], r["currency"]) if r["credits_minor"] else "–",
        "predictions": fmt.grouped(r["predictions"]), "energy": fmt.energy(r["energy_uj"], energy_unit),
        "co2e": fmt.mass(r["co2e_total"], mass_unit),
        "per_1k": "–" if r["per_1k_minor"] is None else _money_fraction(r["per_1k_minor"], r["currency"]),
    } for r in rows]
    summaries = []
    for t in totals:
        currency = t["currency"]
        per_active = (t["revenue_minor"] // t["active"]) if t["active"] else None
        per_1k = (Decimal(t["revenue_minor"]) * 1000 / Decimal(t["predictions"])) if t["predictions"] else None
        summaries.append({
            "currency": currency, "revenue": fmt.money(t["revenue_minor"], currency),
            "credits": fmt.money(-t["credits_minor"], currency), "tenants": t["tenants"], "active": t["active"],
            "invoiced": t["invoiced"], "predictions": fmt.grouped(t["predictions"]),
            "energy": fmt.energy_auto(t["energy_uj"], 3), "co2e": fmt.mass_auto(t["co2e_ug"]),
            "per_active": "–" if per_active is None else fmt.money(per_active, currency),
            "per_1k": "–" if per_1k is None else _money_fraction(per_1k, currency),
            "per_kwh": "–" if not t["energy_uj"] else _money_fraction(
                Decimal(t["revenue_minor"]) / units.uj_to_kwh(t["energy_uj"]), currency),
        })
    context = {
        "running_title": f"Revenue and energy summary {inputs['period']['label']}",
        "running_tenant": "Finance – internal", "period": inputs["period"],
        "period_text": _period_text(inputs["period"]), "rows": table, "summaries": summaries,
        "energy_unit": energy_unit[0], "mass_unit": mass_unit[0],
    }
    pdf = _render("reports/revenue_summary.html", context, inputs=inputs, canonical=canonical, fingerprint=fingerprint,
                  created_at=_dt(inputs["period"]["end"]))
    return Document(inputs=inputs, canonical=canonical, fingerprint=fingerprint, pdf=pdf,
                    csv=revenue_summary_csv(inputs))


def _money_fraction(amount_minor: Decimal, currency: str) -> str:
    """A sub-minor amount (per 1,000 predictions) in major units with 3 significant digits past zero."""
    major = amount_minor / (Decimal(10) ** currency_exponent(currency))
    if abs(major) >= 100:
        return f"{currency} {fmt.grouped(major, 0)}"
    return f"{currency} {fmt.significant(major, 3)}"
