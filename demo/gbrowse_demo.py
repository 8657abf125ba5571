#!/usr/bin/env python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""make demo, with Debian's GBrowse installed: the render farm with real GBrowse 2.56.

Debian's GBrowse in a private Apache (the role's render farm fix applied),
the real balancer against a moto server, and a real ``gbrowse_slave`` at each
instance's private IP in a network namespace of its own (docs/gbrowse.md).
Track images are asked for all along; a steady load on a small file makes the
balancer launch two slaves, then stops. It shows where the images were
rendered. Needs root; without GBrowse it says it skipped (a failure under
CI=true, hacking/skip) and does nothing else.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import typing as t
from pathlib import Path

os.environ["AWS_EC2_METADATA_DISABLED"] = "true"

from ansible_collections.gmod.gbrowse_aws.tests.support import gbrowse  # noqa: E402
from ansible_collections.gmod.gbrowse_aws.tests.support.apache import FixedRateLoad  # noqa: E402

TABLE = ((0.0, 0, 0), (4.0, 2, 2))  # 8 req/s wants two slaves; the images alone, none


def line(text: str = "") -> None:
    print(text, flush=True)


def wait(what: str, predicate: t.Callable[[], object], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"gbrowse demo: no {what} within {timeout:.0f} s")
        time.sleep(0.5)


def run() -> int:
    why = gbrowse.unavailable()
    if why:  # says so; under CI=true that is a failure (hacking/skip)
        return subprocess.call([str(Path(__file__).resolve().parents[1] / "hacking" / "skip"), "GBrowse render farm demo", why])
    line("GBrowse render farm: Debian's GBrowse 2.56, real gbrowse_slave processes, the real balancer")
    with tempfile.TemporaryDirectory(prefix="gbrowse-aws-demo-") as tmp:
        with gbrowse.FarmLab(tmp, table=TABLE, balancer_id="demo-gbrowse") as lab:
            with gbrowse.ImageLoad(lab.master, threads=2) as images, lab.balancer() as bal:
                bal.wait_ready()
                with FixedRateLoad(lab.master.apache.small_file_url, rate=8, threads=2):  # type: ignore[union-attr]
                    line("  load 8 req/s: the balancer launches two slaves")
                    wait("two slaves in renderfarm.conf", lambda: len(lab.farm()) == 2, 90)
                    line(f"  renderfarm.conf: {' '.join(lab.farm())}")
                    wait("images from the slaves", lambda: sum(lab.slaves.rendered().values()) >= 2, 120)
                    line(f"  rendered by the slaves so far: {lab.slaves.rendered()}")
                line("  load stopped: the balancer scales in")
                wait("an empty farm", lambda: lab.farm() == (), 90)
                line(f"  out of the farm; the slaves are terminated {lab.drain_time} s later (drain_time)")
                wait("the slaves gone", lambda: not lab.slaves.addresses(), lab.drain_time + 60)
                emptied, by_slaves = time.monotonic(), lab.slaves.rendered()
                wait("an image rendered on the master", lambda: images.asked_since(emptied), 120)
                line(f"  renderfarm.conf empty; images since rendered on the master: {len(images.asked_since(emptied))}")
                code = bal.terminate()
                images.stop()
            statuses: dict[int, int] = {}
            for answer in images.answers:
                statuses[answer.status] = statuses.get(answer.status, 0) + 1
            line(f"  {len(images.answers)} images, HTTP statuses {statuses}; by the slaves {by_slaves}")
            line(f"  balancer exit {code}; instances left in moto: {lab.running() or 'none'}")
            return 0 if code == 0 and lab.slaves.rendered() == by_slaves else 1


if __name__ == "__main__":
    sys.exit(run())
