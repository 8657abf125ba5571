# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""How long ``gbrowse_aws_balancer simulate`` takes to replay an access log of N lines.

Writes N combined-format lines of a generated trace (bench/traces/gen.py) to
a temporary file, plain and gzip, and times reading it and replaying it with
the default (adaptive) policy and the seed's load table, best of --repeat.

    .venv/bin/python bench/replay_speed.py --lines 1000000
"""

from __future__ import annotations

import argparse
import gzip
import os
import platform
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "traces"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gen  # noqa: E402  pylint: disable=wrong-import-position
from simulate_policies import SEED_TABLE  # noqa: E402  pylint: disable=wrong-import-position

from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._controller import Policy  # noqa: E402
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._simulate import read_trace, simulate  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    p.add_argument("--lines", type=int, default=1_000_000)
    p.add_argument("--seed", type=int, default=4)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    counts = gen.generate(args.seed, 14)
    with tempfile.TemporaryDirectory() as tmp:
        plain = os.path.join(tmp, "access.log")
        with open(plain, "w", encoding="ascii") as out:
            written = gen.write_log(counts, out, limit=args.lines)
        packed = plain + ".1.gz"
        with open(plain, "rb") as src, gzip.open(packed, "wb") as dst:
            shutil.copyfileobj(src, dst)
        print(
            f"{written} lines, {os.path.getsize(plain) / 1e6:.0f} MB plain, {os.path.getsize(packed) / 1e6:.0f} MB gzip"
        )
        print(f"Python {platform.python_version()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
        for path in (plain, packed):
            # CPU seconds (process time) besides wall time: on a shared machine
            # the wall clock measures the neighbours too.
            best: dict[str, float] = {}
            for dummy in range(args.repeat):
                wall, cpu = time.perf_counter(), time.process_time()
                trace = read_trace([path])
                read_wall, read_cpu = time.perf_counter() - wall, time.process_time() - cpu
                simulate(trace, SEED_TABLE, Policy())
                figures = {
                    "read": read_cpu,
                    "replay": time.process_time() - cpu - read_cpu,
                    "total": time.process_time() - cpu,
                    "wall": time.perf_counter() - wall,
                }
                best = {k: min(v, best.get(k, v)) for k, v in figures.items()}
                del read_wall
            print(
                f"{os.path.basename(path)}: {trace.seconds / 86400:.1f} days; CPU s: read {best['read']:.2f}, "
                f"replay {best['replay']:.2f}, total {best['total']:.2f} (wall {best['wall']:.2f})"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
