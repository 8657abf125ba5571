# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A spot market in front of moto: prices to set, spot capacity to take away.

moto answers every DescribeSpotPriceHistory with 0.00001 USD/hour and never
runs out of capacity. :class:`SpotMarket` is an EC2 proxy on 127.0.0.1 that
answers DescribeSpotPriceHistory with ``prices`` (instance type -> USD/hour,
in every zone asked for, else ``zone``) and, while ``spot_capacity`` is
False, answers every *spot* CreateFleet the way EC2 answers an instant fleet
without capacity: HTTP 200, no instances, one ``InsufficientInstanceCapacity``
error. On-demand CreateFleet and everything else go to moto. ``calls``
counts the calls by action (``spot_refused``: the spot launches refused)::

    with SpotMarket(moto.url, prices={"m5.large": 0.05}) as market:
        env = {**moto.environ(), "AWS_ENDPOINT_URL": market.url}
        market.spot_capacity = False
"""

from __future__ import annotations

import collections
import threading
import typing as t
import uuid
from xml.sax.saxutils import escape

from ansible_collections.gmod.gbrowse_aws.tests.support.loopback import EC2Proxy

NAMESPACE = "http://ec2.amazonaws.com/doc/2016-11-15/"


def _indexed(params: t.Mapping[str, str], prefix: str) -> list[str]:
    """``Prefix.1``, ``Prefix.2``, ... of a query-API request, in order."""
    values = []
    n = 1
    while f"{prefix}.{n}" in params:
        values.append(params[f"{prefix}.{n}"])
        n += 1
    return values


class SpotMarket(EC2Proxy):
    """See the module doc."""

    thread_name = "spot market"

    def __init__(self, upstream_url: str, prices: t.Mapping[str, float] | None = None, zone: str = "us-west-2a") -> None:
        super().__init__(upstream_url)
        self.prices = dict(prices or {})
        self.zone = zone
        self.spot_capacity = True
        self.calls: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()

    def answer(self, action: str | None, params: dict[str, str]) -> bytes | None:
        with self._lock:
            if action:
                self.calls[action] += 1
            if action == "DescribeSpotPriceHistory":
                return self._prices(params)
            if action == "CreateFleet" and not self.spot_capacity:
                if params.get("TargetCapacitySpecification.DefaultTargetCapacityType") == "spot":
                    self.calls["spot_refused"] += 1
                    return self._no_capacity()
        return None

    def _prices(self, params: t.Mapping[str, str]) -> bytes:
        types = _indexed(params, "InstanceType") or sorted(self.prices)
        zones = _indexed(params, "Filter.1.Value") or [self.zone]
        items = "".join(
            "<item>"
            f"<availabilityZone>{escape(zone)}</availabilityZone><instanceType>{escape(kind)}</instanceType>"
            "<productDescription>Linux/UNIX</productDescription>"
            f"<spotPrice>{self.prices[kind]:.6f}</spotPrice><timestamp>2026-12-02T12:00:00.000Z</timestamp>"
            "</item>"
            for kind in types
            if kind in self.prices
            for zone in zones
        )
        return (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<DescribeSpotPriceHistoryResponse xmlns="{NAMESPACE}">'
            f"<requestId>{uuid.uuid4()}</requestId><spotPriceHistorySet>{items}</spotPriceHistorySet>"
            "</DescribeSpotPriceHistoryResponse>"
        ).encode("utf-8")

    def _no_capacity(self) -> bytes:
        return (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<CreateFleetResponse xmlns="{NAMESPACE}">'
            f"<requestId>{uuid.uuid4()}</requestId><fleetId>fleet-{uuid.uuid4().hex[:17]}</fleetId>"
            "<errorSet><item><lifecycle>spot</lifecycle><errorCode>InsufficientInstanceCapacity</errorCode>"
            "<errorMessage>There is no Spot capacity available that matches your request.</errorMessage>"
            "</item></errorSet><fleetInstanceSet/></CreateFleetResponse>"
        ).encode("utf-8")
