"""The core type-checks: mypy over dspy_trainkit with the settings in pyproject.toml, as part of the suite.

Run here rather than as a separate CI step so that the README's one test command covers it. mypy caches its
work in .mypy_cache, so a second run takes a second or two.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_core_type_checks():
    result = subprocess.run([sys.executable, "-m", "mypy", "--no-error-summary"], cwd=ROOT, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, "mypy found errors in the core:\n" + result.stdout[-6000:] + result.stderr
