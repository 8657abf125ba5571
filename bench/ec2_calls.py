# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""How many EC2 API calls does the balancer make per poll, by fleet size?

Against a moto server on 127.0.0.1 (nothing leaves the machine), for each
fleet size: launch the fleet (one instant CreateFleet), then count the calls
of a steady poll (ensure_launch_template + describe_fleet), of describe_fleet
alone, and of terminating the whole fleet. Calls are the adapter's own
counter (one per API operation, paging included); attempts count HTTP
requests, retries included (none here: moto never throttles). Times are
moto's, on this machine: they say how slow moto is, not how fast EC2 is.

    .venv/bin/python bench/ec2_calls.py [--sizes 1,10,100,1000] [--mode thread|process]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import time

os.environ["AWS_EC2_METADATA_DISABLED"] = "true"  # before boto3 looks

from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._ec2 import EC2, LaunchSpec, make_client  # noqa: E402
from ansible_collections.gmod.gbrowse_aws.tests.support.moto import (  # noqa: E402
    ACCESS_KEY,
    REGION,
    SECRET_KEY,
    STOCK_AMI,
    MotoServer,
    make_network,
)


def measure(moto: MotoServer, size: int) -> dict[str, object]:
    moto.reset()
    network = make_network(moto.client(), subnet_cidr="127.100.16.0/20")  # room for 4000 slaves
    ec2 = EC2(make_client(REGION, access_key=ACCESS_KEY, secret_key=SECRET_KEY, endpoint_url=moto.url), "bench")
    spec = LaunchSpec(
        image_id=STOCK_AMI,
        instance_types=("m5.large", "c5.large"),
        spot_bid=0.08,
        ports=(8101,),
        subnet_id=network.subnet_id,
    )
    ec2.ensure_launch_template(spec)

    def counted(action: object) -> tuple[int, int, float, object]:
        ec2.calls.clear()
        ec2.attempts.clear()
        started = time.monotonic()
        result = action()  # type: ignore[operator]
        return sum(ec2.calls.values()), sum(ec2.attempts.values()), time.monotonic() - started, result

    launch_calls, _attempts, launch_time, launched = counted(lambda: ec2.launch(size, spec))
    if len(launched.instance_ids) != size:  # type: ignore[attr-defined]
        raise SystemExit(f"launched {len(launched.instance_ids)} of {size}")  # type: ignore[attr-defined]

    def poll() -> int:
        ec2.ensure_launch_template(spec)
        return len(ec2.describe_fleet())

    poll_calls, poll_attempts, poll_time, seen = counted(poll)
    describe_calls, _attempts, describe_time, _fleet = counted(ec2.describe_fleet)
    ids = [i.id for i in ec2.describe_fleet()]
    terminate_calls, _attempts, terminate_time, asked = counted(lambda: ec2.terminate(ids))
    after_calls, _attempts, _time, left = counted(ec2.describe_fleet)
    return {
        "size": size,
        "launch": (launch_calls, launch_time),
        "poll": (poll_calls, poll_attempts, poll_time, seen),
        "describe": (describe_calls, describe_time),
        "terminate": (terminate_calls, terminate_time, len(asked)),  # type: ignore[arg-type]
        "after": (after_calls, len(left)),  # type: ignore[arg-type]
        "breakdown": dict(ec2.calls),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,10,100,1000", help="fleet sizes, comma-separated")
    parser.add_argument(
        "--mode", default="thread", choices=("thread", "process"), help="moto in this process or a child"
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]

    print(
        f"# EC2 API calls per operation, moto server ({args.mode}), {datetime.date.today()}, {platform.python_version()}, {os.cpu_count()} CPUs"
    )
    header = f"{'slaves':>6} | {'launch':>14} | {'steady poll':>18} | {'describe_fleet':>14} | {'terminate all':>18} | {'poll after':>10}"
    print(header)
    print("-" * len(header))
    with MotoServer(mode=args.mode) as moto:
        for size in sizes:
            row = measure(moto, size)
            lc, lt = row["launch"]  # type: ignore[misc]
            pc, pa, pt, seen = row["poll"]  # type: ignore[misc]
            dc, dt = row["describe"]  # type: ignore[misc]
            tc, tt, asked = row["terminate"]  # type: ignore[misc]
            ac, left = row["after"]  # type: ignore[misc]
            if seen != size or asked != size or left != 0:
                raise SystemExit(f"size {size}: saw {seen}, terminated {asked}, {left} left")
            print(
                f"{size:>6} | {lc:>2} call {lt:>6.2f} s | {pc:>2} call ({pa} att) {pt:>5.2f} s | {dc:>2} call {dt:>5.2f} s"
                f" | {tc:>2} calls {tt:>7.2f} s | {ac:>2} call"
            )
    print("calls: API operations (paging included); att: HTTP attempts (retries included); times are moto's")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
