# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Each generated trace x each policy through the simulator: the table in bench/README.md.

Traces come from bench/traces/gen.py (seeds 1-3 were used to tune the
adaptive policy; report others, such as 11-15). The load table is the seed document's,
polls every 0.5 min, the EC2 model at its defaults (docs/simulate.md).

    .venv/bin/python bench/simulate_policies.py --seeds 11,12,13,14,15 --days 7
    .venv/bin/python bench/simulate_policies.py --seeds 11,12,13,14,15 --peak 0.3-2   # small sites
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "traces"))

import gen  # noqa: E402  pylint: disable=wrong-import-position

from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._controller import Policy  # noqa: E402
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._simulate import (  # noqa: E402
    Trace,
    simulate,
    static_fleet,
)

# The [LOAD TABLE] shipped with GBrowse (the seed document), as the unit tests have it.
from ansible_collections.gmod.gbrowse_aws.tests.unit.plugins.module_utils.test_decision import (  # noqa: E402
    SEED as SEED_TABLE,
)

POLICIES = (
    ("default (adaptive)", Policy(), "rate"),
    # The adaptive default before issue 13's second tuning, for comparison.
    (
        "adaptive before (20 min window, 0.5 sd, keeps up to max)",
        Policy(scale_in_window=1200, margin=0.5, scale_in_to_min=False),
        "rate",
    ),
    # The adaptive policy's two keys (docs/balancer.md, "Tuning"): cheaper with more misses, or the reverse.
    ("load_margin = 0.5", Policy(margin=0.5), "rate"),
    ("load_margin = 0, scale_in_window = 20", Policy(margin=0.0, scale_in_window=1200), "rate"),
    ("scale_in_window = 5", Policy(scale_in_window=300), "rate"),
    ("scale_in_window = 20", Policy(scale_in_window=1200), "rate"),
    ("immediate, rate, scale_in_delay 0", Policy("immediate"), "rate"),
    ("immediate, rate, scale_in_delay 5", Policy("immediate", scale_in_delay=300), "rate"),
    ("immediate, rate, scale_in_delay 10", Policy("immediate", scale_in_delay=600), "rate"),
    ("original (immediate, reqpersec)", Policy("immediate"), "reqpersec"),
)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    p.add_argument("--seeds", default="11,12,13,14,15")
    p.add_argument("--days", type=int, default=7)
    p.add_argument("--peak", type=gen.peak_range, default=gen.PEAK, help="LOW-HIGH req/s of the sites' weekday peak")
    p.add_argument("--drain-time", type=float, default=60.0, help="[SLAVE] drain_time, seconds (the default conf's 60)")
    args = p.parse_args()
    print("| trace | policy | slave-hours | vs oracle | under-provisioned | flaps/day | launches/day |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    summary: dict[str, list[tuple[float, float, float]]] = {}
    started = time.time()
    for seed in (int(s) for s in args.seeds.split(",")):
        trace = Trace(gen.START, [int(x) for x in gen.generate(seed, args.days, args.peak)])
        results = [
            (name, simulate(trace, SEED_TABLE, policy, signal=signal, name=name, drain_time=args.drain_time))
            for name, policy, signal in POLICIES
        ]
        results.append(("static fleet for the p99 load", static_fleet(trace, SEED_TABLE, 0.99)))
        oracle = results[0][1].oracle_slave_hours
        sid10 = dict(results)["immediate, rate, scale_in_delay 10"].slave_hours
        for name, r in results:
            print(
                f"| {seed} | {name} | {r.slave_hours:.0f} | {r.vs_oracle:.2f}x | {r.under_provisioned * 100:.2f} % "
                f"| {r.flaps_per_day:.1f} | {r.launches_per_day:.1f} |",
                flush=True,
            )
            summary.setdefault(name, []).append(
                (r.vs_oracle, r.under_provisioned * 100, r.flaps_per_day, r.slave_hours / sid10)
            )
        print(f"| {seed} | oracle | {oracle:.0f} | 1.00x | 0 % | 0 | |", flush=True)
    print()
    print(
        "| policy | vs oracle (mean, worst) | vs scale_in_delay 10 (mean, worst) "
        "| under-provisioned (mean, worst) | flaps/day (mean, worst) |"
    )
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, rows in summary.items():
        cost, under, flaps, rel = ([r[i] for r in rows] for i in range(4))
        print(
            f"| {name} | {sum(cost) / len(cost):.2f}x, {max(cost):.2f}x | {sum(rel) / len(rel):.3f}, {max(rel):.3f} "
            f"| {sum(under) / len(under):.2f} %, {max(under):.2f} % | {sum(flaps) / len(flaps):.1f}, {max(flaps):.1f} |"
        )
    print(f"\n({time.time() - started:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
