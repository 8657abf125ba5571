# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""For every pytest run under tests/: a skip always shows its reason, and under CI it fails the run.

The rule itself (what counts as CI, the message) is hacking/skip's, shared
with the scripts of ``make test``: a green CI run means every test ran.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

SKIP = Path(__file__).resolve().parent.parent / "hacking" / "skip"


def pytest_configure(config: pytest.Config) -> None:
    # -rs: the short summary lists each skipped test with its reason.
    chars = config.option.reportchars or ""
    if "s" not in chars and "a" not in chars and "A" not in chars:
        config.option.reportchars = chars + "s"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = list(reporter.stats.get("skipped", ())) if reporter is not None else []
    if not skipped or not SKIP.exists():
        return
    reasons = sorted({str(report.longrepr[2]) if isinstance(report.longrepr, tuple) else str(report.longrepr) for report in skipped})
    what = f"pytest {' '.join(str(arg) for arg in session.config.args)}"
    done = subprocess.run([str(SKIP), what, f"{len(skipped)} skipped: {'; '.join(reasons)}"], env=os.environ, check=False)
    if done.returncode != 0 and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
