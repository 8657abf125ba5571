#!/usr/bin/env python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""make demo: the real balancer, on embedded defaults, with nothing leaving this machine.

- a private Apache with mod_status on 127.0.0.1, driven through a load ramp
  up and down by a fixed-rate client;
- an EC2 endpoint: a moto server on 127.0.0.1, the slaves' subnet inside
  127.100.0.0/16, instance metadata disabled;
- slave stand-ins answering 403 at each instance's 127.100.1.x address, as
  GBrowse render slaves do;
- the real ``gbrowse_aws_balancer`` command with the load table GBrowse ships.

Per poll it shows the measured load beside Apache's lifetime "requests/sec",
the band the table wants, the slaves pending/booting/ready and the
renderfarm.conf entries; then it stops the balancer with SIGTERM and checks
that nothing of it is left in the endpoint. Everything it started is stopped.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"

from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._ec2 import BALANCER_TAG  # noqa: E402
from ansible_collections.gmod.gbrowse_aws.tests.support.apache import FixedRateLoad, PrivateApache  # noqa: E402
from ansible_collections.gmod.gbrowse_aws.tests.support.balancer import BalancerProcess, write_conf  # noqa: E402
from ansible_collections.gmod.gbrowse_aws.tests.support.moto import MotoServer, make_network, slave_image  # noqa: E402
from ansible_collections.gmod.gbrowse_aws.tests.support.slaves import SlaveStandIns  # noqa: E402

# The [LOAD TABLE] GBrowse ships (the seed document's).
SEED_TABLE = ((0.1, 0, 1), (0.5, 0, 2), (1.0, 1, 3), (2.0, 2, 4), (5.0, 3, 6), (6.0, 4, 6), (7.0, 5, 7), (10.0, 6, 8), (15.0, 8, 8))
# (requests per second, polls to hold it): up to the top of the table and back down to idle.
RAMP = ((0, 2), (3, 3), (8, 3), (20, 4), (6, 3), (1.5, 3), (0, 4))
POLL_MINUTES = 0.05  # 3 s polls: a demo, not a master
BALANCER_ID = "demo"


def line(text: str = "") -> None:
    print(text, flush=True)


def run() -> int:
    with tempfile.TemporaryDirectory(prefix="gbrowse-aws-demo-") as tmp:
        with PrivateApache() as apache, MotoServer() as moto:
            ec2 = moto.client()
            net = make_network(ec2)
            ami = slave_image(ec2)
            conf = write_conf(
                tmp,
                status_url=apache.status_url,
                image_id=ami,
                subnet=net.subnet_id,
                balancer_id=BALANCER_ID,
                table=SEED_TABLE,
                poll_interval=POLL_MINUTES,
                ready_timeout=1,
            )
            line(f"Apache (mod_status)  {apache.status_url}")
            line(f"EC2 endpoint (moto)  {moto.url}   slaves' subnet {net.subnet_id} {net.cidr}")
            line(f"Configuration        {conf}")
            line(f"Render farm list     {Path(tmp) / 'renderfarm.conf'}")
            line()
            with SlaveStandIns(moto.url, balancer_id=BALANCER_ID, boot_delay=4.0) as stand_ins, BalancerProcess(conf, env=moto.environ()) as bal:
                bal.wait_ready()
                line(f"{'poll':>4} {'target':>7} {'measured':>9} {'Apache lifetime':>16} {'want':>6}  "
                     f"{'pending':>7} {'booting':>7} {'ready':>5}  renderfarm.conf")
                n = 0
                for rate, polls in RAMP:
                    load = FixedRateLoad(apache.small_file_url, rate, threads=2, max_duration=120).start() if rate else None
                    try:
                        for dummy in range(polls):
                            s = bal.next_report(timeout=60)
                            n += 1
                            farm = bal.renderers()
                            shown = ", ".join(u.replace("http://", "") for u in farm[:3]) + (f" +{len(farm) - 3}" if len(farm) > 3 else "")
                            measured = "n/a" if s["load"] is None else f"{s['load']:.2f}"
                            lifetime = "n/a" if s["req_per_sec"] is None else f"{s['req_per_sec']:.2f}"
                            line(f"{n:>4} {rate:>7} {measured:>9} {lifetime:>16} {s['min']:>3}-{s['max']:<2}  "
                                 f"{s['pending']:>7} {s['booting']:>7} {s['ready']:>5}  {len(farm)}: {shown}")
                    finally:
                        if load is not None:
                            load.stop()
                line()
                line("SIGTERM: the balancer empties the render farm, terminates its slaves, deletes its template and group")
                code = bal.terminate()
                stand_ins.stop()
            left = leftovers(ec2)
            line(f"balancer exit status {code}; left in the endpoint: {left or 'nothing'}")
            line(f"renderfarm.conf now lists {len(bal.renderers())} renderers")
            return 0 if code == 0 and not left else 1


def leftovers(ec2) -> dict[str, list[str]]:
    tag = [{"Name": f"tag:{BALANCER_TAG}", "Values": [BALANCER_ID]}]
    alive = [
        i["InstanceId"]
        for r in ec2.describe_instances(Filters=tag)["Reservations"]
        for i in r["Instances"]
        if i["State"]["Name"] != "terminated"
    ]
    found = {
        "instances": alive,
        "security groups": [g["GroupId"] for g in ec2.describe_security_groups(Filters=tag)["SecurityGroups"]],
        "launch templates": [t["LaunchTemplateId"] for t in ec2.describe_launch_templates(Filters=tag)["LaunchTemplates"]],
    }
    return {k: v for k, v in found.items() if v}


if __name__ == "__main__":
    start = time.monotonic()
    status = run()
    print(f"demo finished in {time.monotonic() - start:.0f} s", flush=True)
    sys.exit(status)
