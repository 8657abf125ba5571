# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""How close is the balancer's load measure to the true request rate?

Runs a private Apache on 127.0.0.1, drives it with FixedRateLoad at each rate
in turn and samples it with the balancer's LoadMeter. For each rate: the true
rate (the generator's own completions in each sampling window), the measured
rate, the error, Apache's ReqPerSec beside it, and the measured rate one poll
after the load stopped. An ab burst first gives Apache a busy past, as a
master has after a busy spell: ReqPerSec carries it along, the current rate
does not.

    .venv/bin/python bench/load_accuracy.py [--rates 10,50,200,500] [--interval 5] [--windows 3]
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass

from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._status import LoadMeter
from ansible_collections.gmod.gbrowse_aws.tests.support.apache import FixedRateLoad, PrivateApache, ab_burst


@dataclass
class Row:
    target: float
    true: list[float]
    measured: list[float]
    reqpersec_loaded: float | None
    after_stop: float | None
    reqpersec_after: float | None
    generator_errors: int

    @property
    def errors_pct(self) -> list[float]:
        return [100 * (m - t) / t for t, m in zip(self.true, self.measured) if t > 0]


def sample(meter: LoadMeter) -> tuple[float | None, float | None, float]:
    load = meter.sample()
    at = meter.last.at if meter.last is not None else time.monotonic()
    return load.rate, load.req_per_sec, at


def run_rate(apache: PrivateApache, meter: LoadMeter, target: float, interval: float, windows: int) -> Row:
    threads = max(2, min(16, math.ceil(target / 40)))
    duration = 1.0 + interval * windows + 30
    true: list[float] = []
    measured: list[float] = []
    reqpersec = None
    with FixedRateLoad(apache.small_file_url, target, threads=threads, max_duration=duration) as load:
        time.sleep(1.0)
        t0 = sample(meter)[2]
        for dummy in range(windows):
            time.sleep(interval)
            rate, reqpersec, t1 = sample(meter)
            true.append(load.rate_between(t0, t1))
            measured.append(rate if rate is not None else float("nan"))
            t0 = t1
    # Sample right at the stop, then one poll later: what the balancer sees next.
    sample(meter)
    time.sleep(interval)
    after, reqpersec_after = sample(meter)[:2]
    return Row(target, true, measured, reqpersec, after, reqpersec_after, load.errors)


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--rates", default="10,50,200,500", help="req/s to try, comma-separated")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between samples")
    parser.add_argument("--windows", type=int, default=3, help="sampling windows per rate")
    parser.add_argument("--burst", type=float, default=2.0, help="seconds of ab burst first (0: none)")
    args = parser.parse_args(argv)
    rates = [float(r) for r in args.rates.split(",") if r.strip()]

    version = subprocess.run(["apache2", "-v"], capture_output=True, text=True, check=False).stdout.split("\n")[0]
    print(f"# load_accuracy {datetime.date.today()}: {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.2f}, Python {platform.python_version()}, {version.replace('Server version: ', '')}")
    print(f"# interval {args.interval:g} s, {args.windows} windows per rate, ab burst {args.burst:g} s first\n")
    rows: list[Row] = []
    with PrivateApache() as apache:
        meter = LoadMeter(apache.status_url)
        if args.burst > 0:
            burst = ab_burst(apache.small_file_url, seconds=args.burst, concurrency=8)
            print(f"ab burst: {burst.requests} requests in {burst.seconds:.1f} s ({burst.per_second:.0f} req/s)\n")
        meter.sample()
        for target in rates:
            row = run_rate(apache, meter, target, args.interval, args.windows)
            rows.append(row)
            print(f"  {target:g} req/s: true {[round(x, 1) for x in row.true]}, "
                  f"measured {[round(x, 1) for x in row.measured]}", file=sys.stderr)

    print("| target req/s | true req/s | measured req/s | error % (mean, worst) | Apache ReqPerSec | "
          "measured 1 poll after stop | ReqPerSec 1 poll after stop |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        errors = row.errors_pct
        worst = max(errors, key=abs) if errors else None
        print(
            f"| {row.target:g} | {fmt(statistics.fmean(row.true))} | {fmt(statistics.fmean(row.measured))} "
            f"| {fmt(statistics.fmean(errors) if errors else None, 2)}, {fmt(worst, 2)} "
            f"| {fmt(row.reqpersec_loaded)} | {fmt(row.after_stop, 2)} | {fmt(row.reqpersec_after)} |"
        )
    failed = sum(row.generator_errors for row in rows)
    print(f"\ngenerator errors: {failed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
