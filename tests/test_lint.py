"""ruff (its settings: pyproject.toml [tool.ruff]; installed by the dev extra) finds nothing in the
package, the tests and the tools."""

import subprocess
import sys

from tests.helpers import ROOT


def test_ruff_finds_nothing():
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "vlbert", "tests", "tools"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-2000:]
