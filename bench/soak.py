# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The balancer's footprint: resident memory over a long run, and CPU per idle poll.

Two measurements, each against a private Apache (tests/support/apache.py) and a
moto server in its own process (tests/support/moto.py: its memory and CPU are
not the balancer's), both on 127.0.0.1:

1. **In-process soak** (``--polls``, default 10000): ``Balancer.poll()`` in a
   loop with the real load meter (an HTTP GET of server-status per poll), the
   real EC2 facade (one DescribeInstances per poll, over HTTP) and, with
   ``--metrics``, the real Prometheus metrics served on loopback and scraped
   every 10 polls. The balancer's clock advances one poll interval (30 s) per
   poll, so 10000 polls are 83 hours of the default adaptive policy's
   windows. The fleet is empty (the table's only row is ``0 0 0``): an idle
   poll. VmRSS is read from /proc/self/status every 100 polls; CPU is the
   process CPU time spent inside ``poll()`` (time.process_time around each
   call; the scrapes are outside).
2. **The real command** (``--command-seconds``, default 120): ``gbrowse_aws_balancer``
   as systemd would run it (tests/support/balancer.py: READY=1, STATUS=,
   watchdog), polling every 0.6 s (``poll_interval = 0.01``), with
   ``--slaves`` ready slave stand-ins (tests/support/slaves.py, in this
   process). VmRSS and VmHWM from /proc/PID/status every second; CPU per poll
   from /proc/PID/stat's utime + stime over the polls after the first ten
   (start-up excluded), by the number of --report lines.

Run it from the checkout whose code is to be measured (the venv links the
collection; ``PYTHONPATH`` to another link tree measures that tree)::

    .venv/bin/python bench/soak.py                         # --polls 10000 --command-seconds 120 --slaves 2
    .venv/bin/python bench/soak.py --metrics               # the same with metrics_listen set

It is a benchmark, not a test: it asserts nothing and prints the figures.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import tempfile
import time
import typing as t
import urllib.request
from pathlib import Path

os.environ["AWS_EC2_METADATA_DISABLED"] = "true"  # before boto3 looks

from ansible_collections.gmod.gbrowse_aws.tests.support.apache import PrivateApache  # noqa: E402
from ansible_collections.gmod.gbrowse_aws.tests.support.balancer import BalancerProcess, write_conf  # noqa: E402
from ansible_collections.gmod.gbrowse_aws.tests.support.moto import (  # noqa: E402
    ACCESS_KEY,
    SECRET_KEY,
    MotoServer,
    free_port,
    make_network,
    slave_image,
)

PAGE = 4096
TICK = os.sysconf("SC_CLK_TCK")
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def status_kb(pid: int | str = "self") -> dict[str, int]:
    """VmRSS and VmHWM (kB) of ``pid``."""
    found = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            key, dummy, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                found[key] = int(rest.split()[0])
    return found


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        fields = fh.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # fields 14 and 15, counted after the command name


def mb(kb: float) -> str:
    return f"{kb / 1024:.1f}"


def conf_for(directory: Path, apache: PrivateApache, ami: str, subnet: str, slaves: int = 0, **master: str) -> Path:
    return write_conf(
        directory,
        status_url=apache.status_url,
        image_id=ami,
        subnet=subnet,
        balancer_id="soak",
        table=((0.0, slaves, slaves),),
        extra_master={"scaling_policy": "adaptive", **master},
    )


def prepare(moto: MotoServer) -> tuple[str, str]:
    """The slaves' subnet and image in moto, made by a child process: this one never loads a second
    EC2 client (its service model alone is megabytes), so its memory is the balancer's."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            client = moto.client()
            os.write(write, f"{make_network(client).subnet_id} {slave_image(client)}".encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read) as fh:
        answer = fh.read().split()
    os.waitpid(pid, 0)
    if len(answer) != 2:
        raise SystemExit("could not prepare moto (subnet, image)")
    return answer[0], answer[1]


def in_process(args: argparse.Namespace, moto: MotoServer, apache: PrivateApache, ami: str, subnet: str) -> None:
    """``--polls`` idle polls of a Balancer in this process: RSS every 100, CPU inside poll()."""
    from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._conf import load_conf
    from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._daemon import Balancer
    from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._ec2 import EC2, make_client
    from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._fleet import discover_master
    from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._status import LoadMeter

    directory = Path(tempfile.mkdtemp(prefix="soak-"))
    port = free_port()
    extra = {"metrics_listen": f"127.0.0.1:{port}"} if args.metrics else {}
    conf = load_conf(str(conf_for(directory, apache, ami, subnet, **extra)))
    client = make_client("us-west-2", access_key=ACCESS_KEY, secret_key=SECRET_KEY, endpoint_url=moto.url)
    metrics = None
    if args.metrics:
        from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._metrics import start_metrics

        metrics = start_metrics(conf.master.metrics_listen)
        metrics.watch_ec2(client)
    now = [time.time()]
    balancer = Balancer(
        conf,
        ec2=EC2(client, "soak"),
        meter=LoadMeter(conf.master.server_status_url, timeout=conf.master.status_timeout),
        master=discover_master(conf, None),
        clock=lambda: now[0],
        gbrowse_conf_dir=str(directory),
        **({"metrics": metrics} if metrics is not None else {}),  # (a tree from before metrics measures too)
    )
    balancer.sample()
    print(f"\n## In-process: {args.polls} idle polls{' with metrics' if args.metrics else ''}")
    print(f"{'polls':>6} | {'VmRSS MB':>8} | {'VmHWM MB':>8} | {'CPU ms/poll':>11} | {'wall ms/poll':>12}")
    cpu = wall = 0.0
    window = 0
    first_rss = None
    rows = []
    for number in range(1, args.polls + 1):
        now[0] += 30.0
        c0, w0 = time.process_time(), time.perf_counter()
        report = balancer.poll()
        cpu += time.process_time() - c0
        wall += time.perf_counter() - w0
        window += 1
        if report.errors:
            print(f"poll {number}: {report.errors}", file=sys.stderr)
        if args.metrics and number % 10 == 0:
            with NO_PROXY.open(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
                answer.read()
        if number % 100 == 0 or number == 1:
            rss = status_kb()
            if number == args.warmup:
                first_rss = rss["VmRSS"]
            rows.append((number, rss["VmRSS"], rss["VmHWM"], cpu / window * 1000, wall / window * 1000))
            if number == 1 or number % args.every == 0:
                n, r, h, c, w = rows[-1]
                print(f"{n:>6} | {mb(r):>8} | {mb(h):>8} | {c:>11.2f} | {w:>12.2f}", flush=True)
            cpu = wall = 0.0
            window = 0
    last = status_kb()["VmRSS"]
    steady = [c for n, r, h, c, w in rows if n > args.warmup]
    if first_rss is not None and steady:
        print(
            f"after {args.warmup} polls of warm-up: VmRSS {mb(first_rss)} -> {mb(last)} MB "
            f"(growth {(last - first_rss) / 1024:+.2f} MB); CPU per idle poll {sum(steady) / len(steady):.2f} ms "
            f"(median of windows {sorted(steady)[len(steady) // 2]:.2f} ms)"
        )
    if metrics is not None:
        metrics.close()


def command(args: argparse.Namespace, moto: MotoServer, apache: PrivateApache, ami: str, subnet: str) -> None:
    """The real command for ``--command-seconds``: RSS/HWM every second, CPU per poll after ten polls."""
    from ansible_collections.gmod.gbrowse_aws.tests.support.slaves import SlaveStandIns

    directory = Path(tempfile.mkdtemp(prefix="soak-cmd-"))
    extra = {"metrics_listen": f"127.0.0.1:{free_port()}"} if args.metrics else {}
    conf = conf_for(directory, apache, ami, subnet, args.slaves, poll_interval="0.01", **extra)
    with SlaveStandIns(moto.url) as stand_ins, BalancerProcess(conf, env=moto.environ(), args=("--verbosity", "2")) as bal:
        bal.wait_ready(60)
        pid = t.cast(t.Any, bal.proc).pid
        if args.slaves:
            bal.wait_next_report(lambda r: r["ready"] == args.slaves, 120)
        for dummy in range(10):
            bal.next_report(30)
        polls0, cpu0, t0 = len(bal.reports()), cpu_seconds(pid), time.monotonic()
        samples = []
        while time.monotonic() - t0 < args.command_seconds:
            time.sleep(1.0)
            samples.append(status_kb(pid))
        polls, cpu = len(bal.reports()) - polls0, cpu_seconds(pid) - cpu0
        scraped = ""
        if args.metrics:
            url = f"http://{extra['metrics_listen']}/metrics"
            with NO_PROXY.open(url, timeout=5) as answer:
                scraped = f"; /metrics {len(answer.read())} bytes"
        last = bal.reports()[-1]
        bal.terminate()
    del stand_ins
    rss = [s["VmRSS"] for s in samples]
    print(f"\n## The command: {args.command_seconds:.0f} s, {polls} polls every 0.6 s, {args.slaves} ready slaves"
          f"{', metrics on' if args.metrics else ''}")
    print(
        f"VmRSS min {mb(min(rss))} / last {mb(rss[-1])} / max {mb(max(rss))} MB, VmHWM {mb(samples[-1]['VmHWM'])} MB; "
        f"CPU {cpu / max(polls, 1) * 1000:.1f} ms per poll ({cpu:.2f} s over {polls} polls); "
        f"last poll: {last['ready']} ready, errors {last['errors']}{scraped}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--polls", type=int, default=10000, help="in-process idle polls (0: skip)")
    parser.add_argument("--warmup", type=int, default=500, help="polls before the steady state (a multiple of 100)")
    parser.add_argument("--every", type=int, default=1000, help="print a row every this many polls")
    parser.add_argument("--command-seconds", type=float, default=120.0, help="run of the real command (0: skip)")
    parser.add_argument("--slaves", type=int, default=2, help="ready slave stand-ins for the command's run")
    parser.add_argument("--metrics", action="store_true", help="with metrics_listen set (and scraped)")
    args = parser.parse_args()
    print(
        f"# bench/soak.py {' '.join(sys.argv[1:])}: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, "
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
    )
    with MotoServer(mode="process") as moto, PrivateApache() as apache:
        subnet, ami = prepare(moto)
        if args.polls:
            in_process(args, moto, apache, ami, subnet)
        if args.command_seconds:
            command(args, moto, apache, ami, subnet)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
