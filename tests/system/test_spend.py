# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""max_hourly_spend and on_demand_fallback with the real balancer command, moto over HTTP and a spot
market in front of it (tests/support/market.py: moto has a spot price of 0.00001 and endless capacity).

Polls every 1.8 s; the load table's first row is at 0 req/s, so the min is wanted without any load.
"""

from __future__ import annotations

import signal

from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._ec2_data import LIFECYCLE_TAG
from ansible_collections.gmod.gbrowse_aws.tests.support.market import SpotMarket
from ansible_collections.gmod.gbrowse_aws.tests.system.test_balancer import (  # noqa: F401 pylint: disable=unused-import
    BID,
    load_until,
    ours,
    world,
)

#: instance_type of tests/support/balancer.py's conf: m5.large c5.large (spot_bid 0.10).
PRICES = {"m5.large": 0.05, "c5.large": 0.07}


def on_demand_ids(client) -> set[str]:
    pages = client.get_paginator("describe_instances").paginate(
        Filters=[
            {"Name": f"tag:{LIFECYCLE_TAG}", "Values": ["on-demand"]},
            {"Name": "instance-state-name", "Values": ["pending", "running"]},
        ]
    )
    return {i["InstanceId"] for p in pages for r in p["Reservations"] for i in r["Instances"]}


def test_the_spend_cap_holds_under_a_load_that_wants_more(world):
    """5 slaves wanted, 0.20 USD/hour allowed at the dearer type's 0.07: 2 run, whatever the polls;
    a higher cap (SIGHUP) lets the fleet reach the min. Logged once each way; prices asked once."""
    extra = {"max_hourly_spend": "0.2"}
    conf = world.conf(table=((0.0, 5, 5),), extra_master=extra)
    with SpotMarket(world.moto.url, prices=PRICES, zone=world.net.availability_zone) as market:
        env = {**world.moto.environ(), "AWS_ENDPOINT_URL": market.url}
        with world.balancer(conf, env=env) as bal:
            bal.wait_ready()
            first = load_until(bal, lambda r: r["launched"])
            assert len(first["launched"]) == 2 and first["capped"] == 3, first
            assert abs(first["cap_spend"] - 0.14) < 1e-9, first
            for dummy in range(4):
                report = bal.next_report()
                assert report["launched"] == [] and report["capped"] == 3, report
                assert report["cap_spend"] <= 0.2, report
            assert len(ours(world.ec2)) == 2
            assert market.calls["DescribeSpotPriceHistory"] == 1  # cached for 10 minutes
            world.conf(table=((0.0, 5, 5),), extra_master={"max_hourly_spend": "0.5"})
            bal.signal(signal.SIGHUP)
            grown = load_until(bal, lambda r: r["pending"] + r["booting"] + r["ready"] == 5)
            assert grown["capped"] == 0 and grown["cap_spend"] <= 0.5, grown
            log = bal.log_tail(40000)
            assert log.count("max_hourly_spend 0.2 USD/hour reached: 3 slave(s) not launched") == 1, log
            assert log.count("max_hourly_spend no longer limits the fleet") == 1, log
            assert bal.terminate() == 0
    assert ours(world.ec2) == {}


def test_no_spot_capacity_for_n_polls_brings_on_demand_slaves_within_the_cap_then_spot_again(world):
    """Spot CreateFleet answers InsufficientInstanceCapacity: after on_demand_fallback = 2 polls the
    min (3) is filled on-demand as far as the cap allows (0.55 / 0.2 = 2); when spot returns, spot
    slaves (counted at 0.07) replace them as the cap leaves room, each on-demand one terminated only
    once a spot one is ready."""
    conf = world.conf(
        table=((0.0, 3, 3),),
        extra_master={"max_hourly_spend": "0.55", "on_demand_fallback": "2"},
        extra_slave={"on_demand_price": "0.2"},
    )
    with SpotMarket(world.moto.url, prices=PRICES, zone=world.net.availability_zone) as market:
        market.spot_capacity = False
        env = {**world.moto.environ(), "AWS_ENDPOINT_URL": market.url}
        with world.balancer(conf, env=env) as bal:
            bal.wait_ready()
            fallback = load_until(bal, lambda r: r["lifecycle"] == "on-demand" and r["launched"], timeout=40)
            assert len(fallback["launched"]) == 2 and fallback["capped"] == 1, fallback
            assert fallback["spot_failures"] >= 2 and market.calls["spot_refused"] >= 2
            on_demand = set(fallback["launched"])
            load_until(bal, lambda r: r["ready"] == 2 and r["on_demand"] == 2)
            assert on_demand_ids(world.ec2) == on_demand
            assert set(ours(world.ec2)) == on_demand
            refused = market.calls["spot_refused"]
            held = bal.next_report()
            assert held["launched"] == [] and market.calls["spot_refused"] > refused  # spot tried in their place
            market.spot_capacity = True
            reports = []
            while on_demand & set(ours(world.ec2)):
                reports.append(bal.next_report())
                assert len(reports) < 20, reports
            # Never fewer ready slaves than the on-demand ones held, and no spot launch past the cap.
            assert all(r["ready"] >= 2 and (r["cap_spend"] is None or r["cap_spend"] <= 0.55 + 1e-9) for r in reports), reports
            final = load_until(bal, lambda r: r["ready"] == 3 and r["on_demand"] == 0)
            assert final["spot_failures"] == 0
            assert len(ours(world.ec2)) == 3 and not on_demand_ids(world.ec2)
            log = bal.log_tail(40000)
            assert "launching 2 on-demand slave(s)" in log and "Spot capacity is back" in log
            assert bal.terminate() == 0
    assert ours(world.ec2) == {}
