"""Input parsing for the portal's forms. Validation of meaning (a deadline the planner
can meet, a period with a complete month) stays in the services, which say what to fix."""

from __future__ import annotations

from datetime import UTC, datetime

from django import forms
from django.contrib.auth.forms import AuthenticationForm

from inference.models import Mode
from reports.models import ReportKind
from tenants.models import Scope, Tier


class LoginForm(AuthenticationForm):
    username = forms.CharField(label="Username", max_length=150,
                               widget=forms.TextInput(attrs={"autofocus": True, "autocomplete": "username",
                                                             "autocapitalize": "none", "spellcheck": "false"}))
    password = forms.CharField(label="Password", strip=False,
                               widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}))

    error_messages = {
        "invalid_login": "That username and password do not match an account. Check both and try again.",
        "inactive": "This account is disabled. Ask your account admin to re-enable it.",
    }


class TierForm(forms.Form):
    tier = forms.ChoiceField(choices=Tier.choices)


class ApiKeyForm(forms.Form):
    name = forms.CharField(label="Name", max_length=100, required=False,
                           help_text="What the key is for, e.g. “checkout service”.")
    scopes = forms.MultipleChoiceField(
        label="Scopes", choices=Scope.choices, widget=forms.CheckboxSelectMultiple, required=False,
        help_text="What the key may do. None ticked gives every scope.")


class BatchUploadForm(forms.Form):
    file = forms.FileField(label="Input file", allow_empty_file=True,
                           help_text="CSV or Parquet, one row per prediction: a column x0, x1, … per model input "
                                     "(x0…x63 for digits-classifier) and optionally id.",
                           widget=forms.ClearableFileInput(attrs={"accept": ".csv,.parquet,text/csv"}))
    model = forms.ChoiceField(label="Model")
    mode = forms.ChoiceField(label="Mode", initial=Mode.STANDARD, choices=[
        (Mode.STANDARD, "Standard"), (Mode.EFFICIENCY, "Efficiency"), (Mode.ACCURATE, "Accurate")],
        help_text="Standard: the model's default variant. Efficiency: the lowest-energy variant that meets the "
                  "model's accuracy floor. Accurate: the most accurate variant.")
    deadline = forms.DateTimeField(
        label="Deadline (UTC)", input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text="The latest time results must be ready. Green tier: the job runs in the cleanest window before it.")

    def __init__(self, *args, families: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["model"].choices = [(name, name) for name in families]

    def clean_deadline(self) -> datetime:
        # The portal's times are UTC (the form says so); the input carries no zone.
        value = self.cleaned_data["deadline"]
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class ReportRequestForm(forms.Form):
    kind = forms.ChoiceField(label="Report type", choices=ReportKind.choices)
    period = forms.CharField(label="Period", max_length=7,
                             help_text="A year (2026) for a carbon report; a year or a month (2026-11) for an "
                                       "SLA statement. Complete months only.")
