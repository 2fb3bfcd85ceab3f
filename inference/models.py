"""Model registry and the usage ledger.

Units (ARCHITECTURE.md): energy in integer microjoules (`_uj`), CO2e in integer
micrograms (`_ug`), CPU time in integer microseconds (`_cpu_us`), latency in integer
microseconds (`_us`). Accuracy is a fraction in [0, 1] stored as a decimal.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import models

from carbon import units
from tenants.models import TenantOwnedModel


class ModelArtifact(models.Model):
    """An ONNX file, content-addressed: stored once under its SHA-256, however many
    variants (or re-runs of the pipeline) point at it."""

    sha256 = models.CharField(max_length=64, unique=True)
    size_bytes = models.BigIntegerField()
    # Path relative to MEDIA_ROOT: models/<sha256[:2]>/<sha256>.onnx
    path = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.sha256[:12]


class ModelFamily(models.Model):
    name = models.SlugField(max_length=63, unique=True)  # e.g. digits-classifier
    description = models.TextField(blank=True, default="")
    task = models.CharField(max_length=32, default="classification")
    # The lowest accuracy efficiency mode may route to (fraction, e.g. 0.95).
    accuracy_floor = models.DecimalField(max_digits=7, decimal_places=6)
    default_variant = models.ForeignKey(
        "ModelVariant", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "model families"

    def __str__(self) -> str:
        return self.name


class ModelVersion(models.Model):
    """One training of a family on one dataset snapshot; its variants share the data."""

    family = models.ForeignKey(ModelFamily, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    dataset_name = models.CharField(max_length=100)
    dataset_version = models.CharField(max_length=50)
    dataset_sha256 = models.CharField(max_length=64)
    train_rows = models.PositiveIntegerField()
    eval_rows = models.PositiveIntegerField()
    # SHA-256 of the build configuration: with the dataset hash, decides "up to date".
    config_sha256 = models.CharField(max_length=64, blank=True, default="")
    notes = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["family", "-version"]
        constraints = [models.UniqueConstraint(fields=["family", "version"], name="modelversion_unique")]

    def __str__(self) -> str:
        return f"{self.family.name} v{self.version}"


class Technique(models.TextChoices):
    BASELINE = "baseline", "Baseline"
    INT8_QUANTISED = "int8-quantised", "Int8 dynamic quantisation"
    PRUNED = "pruned", "Magnitude pruning with fine-tuning"
    DISTILLED = "distilled", "Distilled student"


class ModelVariant(models.Model):
    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="variants")
    name = models.SlugField(max_length=63)  # unique within a family, e.g. baseline-v1
    technique = models.CharField(max_length=32, choices=Technique.choices)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children")
    artifact = models.ForeignKey(ModelArtifact, on_delete=models.PROTECT, related_name="variants")
    # {"name": "input", "dtype": "float32", "shape": [null, 64], "min": 0, "max": 16}
    input_schema = models.JSONField()
    # {"name": "label", "dtype": "int64", "classes": [0..9]}
    output_schema = models.JSONField()
    parameters = models.BigIntegerField(default=0)  # non-zero weights

    accuracy = models.DecimalField(max_digits=7, decimal_places=6)  # on the held-out set
    accuracy_metric = models.CharField(max_length=50, default="top-1 accuracy")

    # Inference energy, measured by inference.energy's profiler.
    energy_per_1k_uj = models.BigIntegerField()  # microjoules per 1,000 predictions
    energy_method = models.CharField(max_length=200)  # e.g. "cpu-model: 2 cores x 10.0 W/core, PUE 1.2"
    profile_batch_size = models.PositiveIntegerField()
    profile_threads = models.PositiveSmallIntegerField(default=1)
    latency_p50_us = models.BigIntegerField()  # per batch of profile_batch_size rows
    latency_p95_us = models.BigIntegerField()
    rows_per_second = models.BigIntegerField(default=0)  # throughput at the profiling batch size

    # The training run that produced this variant (the full run, or compression).
    training_energy_uj = models.BigIntegerField(default=0)
    training_co2e_ug = models.BigIntegerField(default=0)
    training_method = models.CharField(max_length=200, blank=True, default="")

    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["version__family__name", "-version__version", "name"]
        constraints = [models.UniqueConstraint(fields=["version", "name"], name="modelvariant_unique_name")]

    def __str__(self) -> str:
        return f"{self.version.family.name}/{self.name}"

    @property
    def family(self) -> ModelFamily:
        return self.version.family

    @property
    def accuracy_per_kwh(self) -> Decimal | None:
        """Accuracy bought per kWh of inference energy for 1,000 predictions."""
        if not self.energy_per_1k_uj:
            return None
        return (self.accuracy / units.uj_to_kwh(self.energy_per_1k_uj)).quantize(Decimal("1"))


class TrainingRun(models.Model):
    """Every training run the pipeline makes, kept even when its model is discarded."""

    class Stage(models.TextChoices):
        SUBSET = "subset", "Subset (learning-curve probe)"
        FULL = "full", "Full dataset"
        COMPRESSION = "compression", "Compression (quantise, prune, distil)"

    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="training_runs")
    variant = models.ForeignKey(ModelVariant, null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="training_runs")
    stage = models.CharField(max_length=16, choices=Stage.choices)
    description = models.CharField(max_length=200)
    train_rows = models.PositiveIntegerField()
    accuracy = models.DecimalField(max_digits=7, decimal_places=6)
    energy_uj = models.BigIntegerField()
    co2e_ug = models.BigIntegerField()
    duration_us = models.BigIntegerField()
    method = models.CharField(max_length=200)
    # Why the pipeline went on (or stopped) after this run, in words.
    decision = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]


class Mode(models.TextChoices):
    STANDARD = "standard", "Standard (family default)"
    EFFICIENCY = "efficiency", "Efficiency (lowest energy meeting the accuracy floor)"
    ACCURATE = "accurate", "Accurate (most accurate variant)"


class Source(models.TextChoices):
    ONLINE = "online", "Online prediction API"
    BATCH = "batch", "Batch job"


class UsageHour(TenantOwnedModel):
    """The usage ledger: one row per tenant, hour, variant, mode, source and energy method.

    Rows are only ever incremented (INSERT ... ON CONFLICT DO UPDATE x = x + excluded.x),
    so concurrent flushers from many processes add up exactly.
    """

    hour = models.DateTimeField()  # UTC, truncated to the hour; covers [hour, hour + 1 h)
    variant = models.ForeignKey(ModelVariant, on_delete=models.PROTECT, related_name="+")
    mode = models.CharField(max_length=16, choices=Mode.choices)
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.ONLINE)
    energy_method = models.CharField(max_length=200)
    predictions = models.BigIntegerField(default=0)
    requests = models.BigIntegerField(default=0)
    cpu_us = models.BigIntegerField(default=0)  # whole-request CPU time
    inference_cpu_us = models.BigIntegerField(default=0)  # the onnxruntime call alone
    energy_uj = models.BigIntegerField(default=0)  # includes PUE
    co2e_ug = models.BigIntegerField(default=0)  # operational: energy x grid intensity
    embodied_co2e_ug = models.BigIntegerField(default=0)  # SCI's M term
    # Intensity used for co2e_ug and where it came from (e.g. "codecarbon-annual-average").
    intensity_g_per_kwh = models.DecimalField(max_digits=9, decimal_places=3)
    intensity_source = models.CharField(max_length=100)
    # True for a month's rows compacted by the retention policy: `hour` is then the
    # month's first hour and the row sums the whole month (detail is in cold storage).
    monthly_aggregate = models.BooleanField(default=False, db_default=False)  # raw upserts rely on it

    class Meta(TenantOwnedModel.Meta):
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "hour", "variant", "mode", "source", "energy_method"],
                name="usagehour_unique_bucket",
            ),
            models.CheckConstraint(condition=models.Q(predictions__gte=0) & models.Q(energy_uj__gte=0),
                                   name="usagehour_non_negative"),
        ]
        indexes = [models.Index(fields=["tenant", "hour"], name="usagehour_tenant_hour")]


class MeterSpoolCheckpoint(models.Model):
    """How far a metering spool file has been added to the ledger (see inference/metering.py).

    Updated in the same transaction as the ledger increments it covers, so a spool line
    is counted exactly once whatever crashes in between.
    """

    spool_name = models.CharField(max_length=200, unique=True)
    offset = models.BigIntegerField(default=0)  # bytes of the spool file already counted
    updated_at = models.DateTimeField(auto_now=True)


class BatchInput(TenantOwnedModel):
    """An uploaded batch input file, content-addressed and deduplicated per tenant."""

    class Format(models.TextChoices):
        CSV = "csv", "CSV"
        PARQUET = "parquet", "Parquet"

    sha256 = models.CharField(max_length=64)
    format = models.CharField(max_length=8, choices=Format.choices)
    size_bytes = models.BigIntegerField()
    rows = models.BigIntegerField()
    path = models.CharField(max_length=255)  # relative to MEDIA_ROOT
    created_at = models.DateTimeField(auto_now_add=True)
    read_count = models.BigIntegerField(default=0)  # times served or read by a job (retention report)
    purged_at = models.DateTimeField(null=True, blank=True)  # file deleted by the retention policy

    class Meta(TenantOwnedModel.Meta):
        constraints = [models.UniqueConstraint(fields=["tenant", "sha256"], name="batchinput_unique_per_tenant")]


class BatchJob(TenantOwnedModel):
    class Status(models.TextChoices):
        PLANNED = "planned", "Planned into a low-carbon window"
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    input = models.ForeignKey(BatchInput, on_delete=models.PROTECT, related_name="jobs")
    family = models.ForeignKey(ModelFamily, on_delete=models.PROTECT, related_name="+")
    variant = models.ForeignKey(ModelVariant, on_delete=models.PROTECT, related_name="+")
    mode = models.CharField(max_length=16, choices=Mode.choices)
    tier = models.CharField(max_length=16)  # the tenant's tier when submitted: decides scheduling
    deadline = models.DateTimeField()
    status = models.CharField(max_length=16, choices=Status.choices)
    submitted_at = models.DateTimeField(auto_now_add=True)
    estimated_seconds = models.PositiveIntegerField()

    # The plan (green tier; standard-tier jobs are planned "now" with no shifting).
    plan_version = models.PositiveIntegerField(default=1)  # a queued task for an older plan is a no-op
    planned_start = models.DateTimeField()
    planned_end = models.DateTimeField()
    run_now_g_per_kwh = models.DecimalField(max_digits=9, decimal_places=3)  # the counterfactual
    planned_g_per_kwh = models.DecimalField(max_digits=9, decimal_places=3)
    plan_provider = models.CharField(max_length=100)
    plan_method = models.CharField(max_length=32)
    plan_measurable = models.BooleanField(default=False)
    plan_explanation = models.TextField()
    last_planned_at = models.DateTimeField()

    # The run.
    attempts = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    rows_done = models.BigIntegerField(default=0)
    result_path = models.CharField(max_length=255, blank=True, default="")
    result_sha256 = models.CharField(max_length=64, blank=True, default="")
    result_read_count = models.BigIntegerField(default=0)
    result_purged_at = models.DateTimeField(null=True, blank=True)  # deleted by the retention policy
    cpu_us = models.BigIntegerField(default=0)
    energy_uj = models.BigIntegerField(default=0)
    actual_g_per_kwh = models.DecimalField(max_digits=9, decimal_places=3, null=True, blank=True)
    co2e_ug = models.BigIntegerField(default=0)  # operational, at the intensity it actually ran at
    run_now_co2e_ug = models.BigIntegerField(default=0)  # same energy at the run-now intensity
    error = models.TextField(blank=True, default="")

    class Meta(TenantOwnedModel.Meta):
        ordering = ["-submitted_at", "-id"]
        indexes = [models.Index(fields=["status", "planned_start"], name="batchjob_status_start")]

    @property
    def saved_co2e_ug(self) -> int:
        """CO2e avoided by running in the planned window instead of at once (measured)."""
        return self.run_now_co2e_ug - self.co2e_ug if self.status == self.Status.SUCCEEDED else 0


class EnergyBudget(TenantOwnedModel):
    """A tenant's monthly energy budget, for all its usage or one model family.

    Crossing 80% and 100% of the limit in a month raises a BudgetEvent. With `enforce`,
    predictions beyond the limit get 429 until a tenant admin signs off a higher limit.
    """

    family = models.ForeignKey(ModelFamily, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    monthly_limit_uj = models.BigIntegerField()  # energy per calendar month (UTC), microjoules
    enforce = models.BooleanField(default=False)
    # Maintained by inference.budgets: usage of the current month has reached the limit.
    exceeded = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantOwnedModel.Meta):
        constraints = [
            models.UniqueConstraint(fields=["tenant", "family"], name="energybudget_one_per_family"),
            models.UniqueConstraint(fields=["tenant"], condition=models.Q(family__isnull=True),
                                    name="energybudget_one_overall"),
            models.CheckConstraint(condition=models.Q(monthly_limit_uj__gt=0), name="energybudget_positive"),
        ]


class BudgetEvent(TenantOwnedModel):
    budget = models.ForeignKey(EnergyBudget, on_delete=models.CASCADE, related_name="events")
    month = models.DateField()  # first day of the month
    threshold_pct = models.PositiveSmallIntegerField()  # 80 or 100
    usage_uj = models.BigIntegerField()
    limit_uj = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta(TenantOwnedModel.Meta):
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["budget", "month", "threshold_pct", "limit_uj"],
                                               name="budgetevent_once_per_threshold")]


class BudgetSignOff(TenantOwnedModel):
    budget = models.ForeignKey(EnergyBudget, on_delete=models.CASCADE, related_name="sign_offs")
    month = models.DateField()
    signed_by = models.CharField(max_length=150)
    reason = models.TextField()
    previous_limit_uj = models.BigIntegerField()
    new_limit_uj = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta(TenantOwnedModel.Meta):
        ordering = ["-created_at", "-id"]


class RetentionPolicy(TenantOwnedModel):
    """How long a tenant's data stays hot. Past it, usage detail is archived to Parquet in
    cold storage and compacted to monthly rows; batch files are deleted."""

    batch_inputs_days = models.PositiveIntegerField(default=90)
    batch_outputs_days = models.PositiveIntegerField(default=90)
    usage_detail_days = models.PositiveIntegerField(default=400)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantOwnedModel.Meta):
        constraints = [models.UniqueConstraint(fields=["tenant"], name="retentionpolicy_one_per_tenant")]
