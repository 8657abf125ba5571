# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""EventBridge's EC2 events, as the interruption queue receives them -> Notice (pure)."""

from __future__ import annotations

import json

import pytest

from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._interruptions import (
    Kind,
    Malformed,
    Notice,
    describe,
    event_time,
    parse,
)
from ansible_collections.gmod.gbrowse_aws.tests.support import interruptions as events

# AWS's documented examples, as aws-node-termination-handler quotes them in
# pkg/monitor/sqsevent/{spot-itn,rebalance-recommendation,ec2-state-change}-event.go.
SPOT_ITN = """{
  "version": "0",
  "id": "1e5527d7-bb36-4607-3370-4164db56a40e",
  "detail-type": "EC2 Spot Instance Interruption Warning",
  "source": "aws.ec2",
  "account": "123456789012",
  "time": "1970-01-01T00:00:00Z",
  "region": "us-east-1",
  "resources": ["arn:aws:ec2:us-east-1b:instance/i-0b662ef9931388ba0"],
  "detail": {"instance-id": "i-0b662ef9931388ba0", "instance-action": "terminate"}
}"""
REBALANCE = """{
  "version": "0",
  "id": "5d5555d5-dd55-5555-5555-5555dd55d55d",
  "detail-type": "EC2 Instance Rebalance Recommendation",
  "source": "aws.ec2",
  "account": "123456789012",
  "time": "2020-10-26T14:14:14Z",
  "region": "us-east-1",
  "resources": ["arn:aws:ec2:us-east-1b:instance/i-0b662ef9931388ba0"],
  "detail": {"instance-id": "i-0b662ef9931388ba0"}
}"""
STATE_CHANGE = """{
  "version": "0",
  "id": "7bf73129-1428-4cd3-a780-95db273d1602",
  "detail-type": "EC2 Instance State-change Notification",
  "source": "aws.ec2",
  "account": "123456789012",
  "time": "2015-11-11T21:29:54Z",
  "region": "us-east-1",
  "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-abcd1111"],
  "detail": {"instance-id": "i-abcd1111", "state": "pending"}
}"""


@pytest.mark.parametrize(
    "body, kind, instance_id, at, state, urgent",
    [
        (SPOT_ITN, Kind.INTERRUPTION, "i-0b662ef9931388ba0", 0.0, None, True),
        (REBALANCE, Kind.REBALANCE, "i-0b662ef9931388ba0", 1603721654.0, None, True),
        (STATE_CHANGE, Kind.STATE_CHANGE, "i-abcd1111", 1447277394.0, "pending", False),
        (STATE_CHANGE.replace('"pending"', '"shutting-down"'), Kind.STATE_CHANGE, "i-abcd1111", 1447277394.0,
         "shutting-down", True),
        (STATE_CHANGE.replace('"pending"', '"STOPPING"'), Kind.STATE_CHANGE, "i-abcd1111", 1447277394.0,
         "stopping", True),
        (STATE_CHANGE.replace('"pending"', '"running"'), Kind.STATE_CHANGE, "i-abcd1111", 1447277394.0,
         "running", False),
        (events.health_event(), Kind.OTHER, None, 1796240863.0, None, False),
    ],
)
def test_parse_the_documented_events(body, kind, instance_id, at, state, urgent) -> None:
    notice = parse(body)
    assert (notice.kind, notice.instance_id, notice.at, notice.state, notice.urgent) == (
        kind, instance_id, at, state, urgent
    )


def test_the_test_events_parse_as_the_documented_ones() -> None:
    """tests/support/interruptions.py (what the system tests send) has the documented shapes."""
    for make, documented in ((events.spot_interruption_warning, SPOT_ITN), (events.rebalance_recommendation, REBALANCE)):
        ours = json.loads(make("i-0b662ef9931388ba0", "us-east-1", at=0))
        assert set(ours) == set(json.loads(documented))
        assert set(ours["detail"]) == set(json.loads(documented)["detail"])
        assert parse(json.dumps(ours)).kind is parse(documented).kind
    body = events.state_change("i-abcd1111", "terminated", at=5)
    assert parse(body) == Notice(
        Kind.STATE_CHANGE, "i-abcd1111", 5.0, "terminated", "EC2 Instance State-change Notification",
        json.loads(body)["id"],
    )


@pytest.mark.parametrize("body", events.GARBAGE)
def test_garbage_is_malformed_with_one_line(body) -> None:
    with pytest.raises(Malformed) as caught:
        parse(body)
    assert "\n" not in str(caught.value) and str(caught.value)


@pytest.mark.parametrize(
    "change, kind",
    [
        ({"source": "aws.health"}, Kind.OTHER),  # another source: not EC2's event, whatever its type says
        ({"version": "1"}, Kind.OTHER),  # a version we do not know
        ({"detail-type": "EC2 Fast Launch State-change Notification"}, Kind.OTHER),
    ],
)
def test_other_events_are_not_acted_on(change, kind) -> None:
    event = {**json.loads(SPOT_ITN), **change}
    notice = parse(json.dumps(event))
    assert notice.kind is kind and notice.instance_id is None and not notice.urgent


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2020-10-26T14:14:14Z", 1603721654.0),
        ("2020-10-26T14:14:14+00:00", 1603721654.0),
        ("2020-10-26T14:14:14", 1603721654.0),
        ("yesterday", None),
        (12, None),
        (None, None),
    ],
)
def test_event_time(text, expected) -> None:
    assert event_time(text) == expected


def test_describe() -> None:
    assert describe(parse(SPOT_ITN)) == "spot interruption warning for i-0b662ef9931388ba0"
    assert describe(parse(STATE_CHANGE)) == "state change to pending for i-abcd1111"
    assert describe(parse(events.health_event())) == "'AWS Health Event' event"
