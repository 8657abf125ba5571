# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The real balancer's /metrics (metrics_listen), scraped over HTTP on loopback while it scales out and in.

Same parts as test_balancer.py (its ``world``): a real Apache, moto over HTTP,
slave stand-ins. The counters are read from the scrape, as Prometheus reads them.
"""

from __future__ import annotations

import typing as t
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from ansible_collections.gmod.gbrowse_aws.tests.support.moto import free_port
from ansible_collections.gmod.gbrowse_aws.tests.system.test_balancer import (  # noqa: F401 pylint: disable=unused-import
    load_until,
    ours,
    world,
)

NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the page: (name, sorted labels) -> value."""
    with NO_PROXY.open(url, timeout=10) as answer:
        assert answer.status == 200 and answer.headers.get_content_type() == "text/plain"
        text = answer.read().decode("utf-8")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def get(samples: t.Mapping[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_follow_a_scale_out_and_in(world, fixed_rate_load):  # noqa: F811
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    conf = world.conf(extra_master={"metrics_listen": f"127.0.0.1:{port}"})
    with world.balancer(conf) as bal:
        bal.wait_ready()
        bal.next_report()
        quiet = scrape(url)
        assert get(quiet, "gbrowse_aws_slaves_launched_total") == 0
        assert get(quiet, "gbrowse_aws_band_max_slaves") == 0
        assert get(quiet, "gbrowse_aws_ec2_calls_total", action="DescribeInstances", code="OK") >= 1
        assert not any(name.startswith(("process_", "python_")) for name, dummy in quiet)  # a private registry

        load = fixed_rate_load(world.apache.small_file_url, 50)
        load_until(bal, lambda s: s["ready"] >= 1)
        busy = scrape(url)
        launched = get(busy, "gbrowse_aws_slaves_launched_total")
        assert launched >= 1
        assert get(busy, "gbrowse_aws_band_min_slaves") >= 1 and get(busy, "gbrowse_aws_load") >= 20
        assert get(busy, "gbrowse_aws_ec2_calls_total", action="CreateFleet", code="OK") >= 1
        assert get(busy, "gbrowse_aws_slaves", state="ready") >= 1
        assert get(busy, "gbrowse_aws_spend_upper_bound_dollars_per_hour") >= 0.10  # spot_bid 0.10, one running
        assert get(busy, "gbrowse_aws_poll_duration_seconds_count") > get(quiet, "gbrowse_aws_poll_duration_seconds_count")

        load.stop()
        load_until(bal, lambda s: s["max"] == 0)
        load_until(bal, lambda s: not s["fleet"]["instances"])
        after = scrape(url)
        assert get(after, "gbrowse_aws_slaves_terminated_total", reason="scale-in") >= launched
        for reason in ("not ready", "reclaimed", "vanished", "shutdown"):
            assert get(after, "gbrowse_aws_slaves_terminated_total", reason=reason) == 0, reason
        assert get(after, "gbrowse_aws_ec2_calls_total", action="TerminateInstances", code="OK") >= 1
        assert get(after, "gbrowse_aws_slaves", state="ready") == 0
        assert get(after, "gbrowse_aws_status_read_failures_total") == 0
        assert ours(world.ec2) == {}
        assert bal.terminate() == 0
