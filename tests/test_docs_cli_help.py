"""The --help texts shown in docs/cli.rst are those of the real command line."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_cli_help_in_docs_is_current():
    script = ROOT / "docs" / "_cli_help" / "regenerate.py"
    result = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
