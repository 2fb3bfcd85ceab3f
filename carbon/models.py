"""Stored grid-intensity history. Not tenant-owned: every tenant in a zone shares it."""

from __future__ import annotations

from datetime import timedelta

from django.db import models
from django.utils import timezone

# No stored point is longer than this; reads use it to bound index range scans.
MAX_POINT_DURATION = timedelta(days=1)


class Kind(models.TextChoices):
    DIRECT = "direct", "Direct (combustion only)"
    LIFECYCLE = "lifecycle", "Life-cycle (LCA)"


class GridIntensity(models.Model):
    """Average grid carbon intensity of one zone over [start, end).

    One row per zone, start, kind and source, so importing the same file twice
    updates rows instead of adding them. Values from different sources are kept side
    by side (they use different methods; see docs/carbon.md) and never averaged.
    """

    zone = models.CharField(max_length=32)  # Electricity Maps naming: GB, DE, US-CAL-CISO
    start = models.DateTimeField()  # UTC
    end = models.DateTimeField()  # UTC, exclusive
    intensity_g_per_kwh = models.DecimalField(max_digits=9, decimal_places=3)  # gCO2e/kWh
    kind = models.CharField(max_length=16, choices=Kind.choices)
    # Where the value comes from, e.g. "electricitymaps-export", "lets-wait-awhile".
    source = models.CharField(max_length=100)
    is_estimated = models.BooleanField(default=False)  # the publisher flagged it as estimated
    imported_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            # Its index (zone, start, kind, source) also serves every (zone, start) range
            # read, so there is no separate (zone, start) index to maintain on import.
            models.UniqueConstraint(fields=["zone", "start", "kind", "source"], name="gridintensity_unique_point"),
            models.CheckConstraint(condition=models.Q(end__gt=models.F("start")),
                                   name="gridintensity_end_after_start"),
            models.CheckConstraint(condition=models.Q(end__lte=models.F("start") + MAX_POINT_DURATION),
                                   name="gridintensity_at_most_one_day"),
            models.CheckConstraint(condition=models.Q(intensity_g_per_kwh__gte=0),
                                   name="gridintensity_non_negative"),
            models.CheckConstraint(condition=models.Q(kind__in=Kind.values), name="gridintensity_kind_valid"),
        ]
        ordering = ["zone", "start"]

    def __str__(self) -> str:
        return f"{self.zone} {self.start:%Y-%m-%d %H:%M} {self.intensity_g_per_kwh} g/kWh ({self.kind}, {self.source})"
