# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""EC2's interruption events as EventBridge delivers them to an SQS queue (the message body).

The shapes are AWS's documented examples, as aws-node-termination-handler's
queue processor (pkg/monitor/sqsevent/*.go) and Karpenter's interruption
controller (pkg/controllers/interruption/messages) parse them: every field
EventBridge sets, ``resources`` with the instance's ARN (whose "region" is
an availability zone in AWS's own spot example), ``detail`` per type.
Used by the unit tests of ``_interruptions`` and by the system tests, which
send them to moto's SQS.
"""

from __future__ import annotations

import datetime
import json
import time
import typing as t
import uuid

ACCOUNT = "123456789012"


def _event(detail_type: str, instance_id: str, detail: dict[str, t.Any], region: str, at: float | None) -> dict[str, t.Any]:
    when = datetime.datetime.fromtimestamp(time.time() if at is None else at, datetime.timezone.utc)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": "aws.ec2",
        "account": ACCOUNT,
        "time": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [f"arn:aws:ec2:{region}b:instance/{instance_id}"],
        "detail": {"instance-id": instance_id, **detail},
    }


def spot_interruption_warning(instance_id: str, region: str = "us-west-2", at: float | None = None) -> str:
    return json.dumps(
        _event("EC2 Spot Instance Interruption Warning", instance_id, {"instance-action": "terminate"}, region, at)
    )


def rebalance_recommendation(instance_id: str, region: str = "us-west-2", at: float | None = None) -> str:
    return json.dumps(_event("EC2 Instance Rebalance Recommendation", instance_id, {}, region, at))


def state_change(instance_id: str, state: str, region: str = "us-west-2", at: float | None = None) -> str:
    event = _event("EC2 Instance State-change Notification", instance_id, {"state": state}, region, at)
    event["resources"] = [f"arn:aws:ec2:{region}:{ACCOUNT}:instance/{instance_id}"]
    return json.dumps(event)


def health_event(region: str = "us-west-2") -> str:
    """An AWS Health event (Karpenter's ScheduledChangeRule sends these to the same queue)."""
    return json.dumps(
        {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "AWS Health Event",
            "source": "aws.health",
            "account": ACCOUNT,
            "time": "2026-12-02T19:47:43Z",
            "region": region,
            "resources": [],
            "detail": {"service": "EC2", "eventTypeCategory": "scheduledChange", "affectedEntities": []},
        }
    )


#: Message bodies the balancer must log and delete, each a different way of being wrong.
GARBAGE = (
    "",
    "not json at all",
    "[1, 2, 3]",
    '{"detail-type": "EC2 Spot Instance Interruption Warning"}',
    json.dumps({"version": "0", "source": "aws.ec2", "detail-type": "EC2 Spot Instance Interruption Warning"}),
    json.dumps(
        {"version": "0", "source": "aws.ec2", "detail-type": "EC2 Instance Rebalance Recommendation", "detail": {}}
    ),
    json.dumps(
        {
            "version": "0",
            "source": "aws.ec2",
            "detail-type": "EC2 Instance State-change Notification",
            "detail": {"instance-id": "i-0123456789abcdef0"},
        }
    ),
    json.dumps(
        {
            "version": "0",
            "source": "aws.ec2",
            "detail-type": "EC2 Spot Instance Interruption Warning",
            "detail": {"instance-id": "; rm -rf /"},
        }
    ),
)
