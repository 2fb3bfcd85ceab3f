"""Static security checks that CI runs: bandit over the application code."""

import subprocess
import sys

from tests.conftest import ROOT

APP_DIRS = ["config", "tenants", "carbon", "inference", "billing", "reports", "portal", "ops"]


def test_bandit_finds_nothing():
    result = subprocess.run(
        [sys.executable, "-m", "bandit", "-q", "-r", *APP_DIRS, "-x", "*/migrations/*", "-f", "txt"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
