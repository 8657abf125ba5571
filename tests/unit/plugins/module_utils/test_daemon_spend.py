# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The daemon's part in the spend cap and the on-demand fallback: its memory (failed spot polls),
its log lines (once when the cap binds, once when it stops), and what it asks EC2 for."""

from __future__ import annotations

import dataclasses
import logging
import typing as t
from dataclasses import dataclass

import pytest

from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._conf import parse_conf
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._daemon import Balancer
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._ec2 import CapacityError, EC2Error, LaunchResult
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._ec2_data import LIFECYCLE_TAG
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._fleet import Master
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._readiness import Probe
from ansible_collections.gmod.gbrowse_aws.tests.unit.plugins.module_utils.test_daemon import FakeEC2, FakeMeter

CONF = """[LOAD TABLE]
0    0 0
10   {low} {high}
[MASTER]
renderfarm_conf = {farm}
reload_command = true
scaling_policy = immediate
{master}
[SLAVE]
image_id = ami-12345678
instance_type = m5.large c5.large
availability_zone = us-west-2a
region = us-west-2
spot_bid = 0.2
ready_timeout = 10
drain_time = 0
{slave}
"""


@dataclass
class MarketEC2(FakeEC2):
    """FakeEC2 with a spot market: a price, spot capacity that comes and goes, on-demand launches tagged."""

    price: float | None = 0.1
    price_error: bool = False
    spot_capacity: bool = True
    asked: list[tuple[tuple[str, ...], tuple[str, ...]]] = dataclasses.field(default_factory=list)
    kinds: list[str] = dataclasses.field(default_factory=list)

    def spot_price(self, instance_types: t.Sequence[str], zones: t.Sequence[str] = ()) -> float | None:
        self.asked.append((tuple(instance_types), tuple(zones)))
        if self.price_error:
            raise EC2Error("Failed to describe spot prices: UnauthorizedOperation: no", code="UnauthorizedOperation")
        return self.price

    def launch(self, count: int, spec: t.Any, on_demand_price: float | None = None) -> LaunchResult:
        if on_demand_price is None and not self.spot_capacity:
            raise CapacityError("Failed to launch: InsufficientInstanceCapacity: none", code="InsufficientInstanceCapacity")
        self.kinds.append("spot" if on_demand_price is None else "on-demand")
        result = super().launch(count, spec)
        if on_demand_price is not None:
            tagged = {LIFECYCLE_TAG: "on-demand"}
            self.hidden = [dataclasses.replace(i, tags=tagged) if i.id in result.instance_ids else i for i in self.hidden]
        return result


@pytest.fixture
def make(tmp_path):
    def build(master: str = "", slave: str = "", low: int = 2, high: int = 3, rates: int = 40):
        text = CONF.format(farm=tmp_path / "renderfarm.conf", master=master, slave=slave, low=low, high=high)
        conf = parse_conf(text, "test.conf")
        ec2 = MarketEC2()
        now = [1100.0]
        bal = Balancer(
            conf,
            ec2=ec2,  # type: ignore[arg-type]
            meter=FakeMeter([20] * rates),  # type: ignore[arg-type]
            master=Master(),
            clock=lambda: now[0],
            check=lambda targets, port, timeout: dict.fromkeys(targets, Probe.READY),
            reload=lambda command: None,
        )
        bal._spec = object()  # type: ignore[assignment]  # no image lookup in unit tests

        def poll():
            report = bal.poll()
            ec2.reveal()
            now[0] += 30
            return report

        return bal, ec2, poll

    return build


def test_without_a_cap_no_price_is_asked(make):
    bal, ec2, poll = make()
    report = poll()
    assert ec2.asked == [] and report.cap_spend is None and report.capped == 0


def test_the_cap_holds_and_is_logged_once_when_it_binds_and_once_when_it_stops(make, caplog):
    # 6 wanted, 0.25 USD/hour at 0.1 each: 2 launched, 4 withheld; then the price falls to 0.05: 5 in all
    bal, ec2, poll = make(master="max_hourly_spend = 0.25", low=6, high=6)
    caplog.set_level(logging.INFO, logger="gbrowse_aws.balancer")
    first = poll()
    assert (first.plan.launch, first.capped, first.cap_spend) == (2, 4, pytest.approx(0.2))
    assert ec2.asked == [(("m5.large", "c5.large"), ("us-west-2a",))]
    second = poll()
    assert (second.plan.launch, second.capped) == (0, 4)
    ec2.price = 0.05
    third = poll()
    assert (third.plan.launch, third.capped, third.cap_spend) == (3, 1, pytest.approx(0.25))
    assert len(ec2.visible) == 5
    bal.conf = dataclasses.replace(bal.conf, master=dataclasses.replace(bal.conf.master, max_hourly_spend=None))
    bal.settings = bal.conf.poll_settings()
    fourth = poll()
    assert (fourth.plan.launch, fourth.capped) == (1, 0)
    binds = [r.getMessage() for r in caplog.records if "max_hourly_spend" in r.getMessage()]
    assert len(binds) == 2, binds
    assert binds[0].startswith("max_hourly_spend 0.25 USD/hour reached: 4 slave(s) not launched")
    assert binds[1] == "max_hourly_spend no longer limits the fleet"


def test_no_spot_price_counts_at_the_bid_and_says_so(make, caplog):
    bal, ec2, poll = make(master="max_hourly_spend = 0.45", low=4, high=4)
    ec2.price_error = True
    report = poll()
    assert (report.plan.launch, report.capped) == (2, 2)  # 2 x spot_bid 0.2 <= 0.45
    assert "Cannot read the spot price" in caplog.text and "spot_bid 0.2" in caplog.text


def test_spot_failures_lead_to_on_demand_then_back_to_spot(make, caplog):
    bal, ec2, poll = make(master="on_demand_fallback = 2", slave="on_demand_price = 0.3")
    caplog.set_level(logging.INFO, logger="gbrowse_aws.balancer")
    ec2.spot_capacity = False
    assert poll().launched == [] and bal.spot_failures == 1
    assert poll().launched == [] and bal.spot_failures == 2
    fallback = poll()
    assert fallback.lifecycle == "on-demand" and len(fallback.launched) == 2 and ec2.kinds == ["on-demand"]
    on_demand = set(fallback.launched)
    # The min is held by on-demand slaves: spot is tried in their place, and fails again
    held = poll()
    assert held.on_demand == 2 and held.launched == [] and bal.spot_failures == 3
    assert not set(ec2.terminated)
    ec2.spot_capacity = True
    back = poll()
    assert back.lifecycle == "spot" and len(back.launched) == 2 and bal.spot_failures == 0
    assert not set(ec2.terminated)  # launch before terminate: the spot ones are not ready yet
    replaced = poll()  # the spot slaves answer: the on-demand ones go, never below the min
    assert set(ec2.terminated) == on_demand and replaced.launched == []
    assert {i.id for i in ec2.visible} == set(back.launched)  # two ready spot slaves: the min held
    assert ec2.kinds == ["on-demand", "spot"]
    assert "launching 2 on-demand slave(s)" in caplog.text and "Spot capacity is back after 3 poll(s)" in caplog.text


def test_without_fallback_spot_failures_only_retry(make):
    bal, ec2, poll = make()
    ec2.spot_capacity = False
    for dummy in range(4):
        report = poll()
        assert report.lifecycle == "spot" and report.launched == []
    assert ec2.kinds == [] and bal.spot_failures == 4
