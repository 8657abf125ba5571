# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""EC2's interruption events, as EventBridge puts them on an SQS queue: JSON -> :class:`Notice`.

Pure (stdlib only, no clock): tested in tests/unit/plugins/module_utils/test_interruptions.py
with the events' real shapes (those aws-node-termination-handler's queue
processor and Karpenter's interruption controller parse). EventBridge sends
the event itself as the message body; an event is recognised, as Karpenter
does, by its ``version``, ``source`` and ``detail-type``::

    {"version": "0", "id": "...", "detail-type": "EC2 Spot Instance Interruption Warning",
     "source": "aws.ec2", "account": "123456789012", "time": "2026-12-02T19:47:43Z",
     "region": "us-west-2", "resources": ["arn:aws:ec2:us-west-2a:instance/i-0b662ef9931388ba0"],
     "detail": {"instance-id": "i-0b662ef9931388ba0", "instance-action": "terminate"}}

"EC2 Instance Rebalance Recommendation" has ``detail: {"instance-id"}``,
"EC2 Instance State-change Notification" ``detail: {"instance-id", "state"}``.
"""

from __future__ import annotations

import datetime
import enum
import json
import re
from dataclasses import dataclass


class Kind(str, enum.Enum):
    """What an event means for a slave."""

    INTERRUPTION = "interruption"  # spot reclaims it in two minutes: out of the farm now, replaced now
    REBALANCE = "rebalance"  # at elevated risk: replaced first, retired once the replacement is ready
    STATE_CHANGE = "state-change"  # stopping, shutting down...: reconcile now
    OTHER = "other"  # an event we do not act on (another detail-type, a state we need not hurry for)


#: detail-type -> kind, for ``source`` aws.ec2 and ``version`` 0.
DETAIL_TYPES = {
    "EC2 Spot Instance Interruption Warning": Kind.INTERRUPTION,
    "EC2 Instance Rebalance Recommendation": Kind.REBALANCE,
    "EC2 Instance State-change Notification": Kind.STATE_CHANGE,
}

#: States worth a poll at once (Karpenter's and the termination handler's list): the slave is going.
GOING_STATES = frozenset({"stopping", "stopped", "shutting-down", "terminated"})

_INSTANCE_ID = re.compile(r"i-[0-9a-f]{1,17}", re.ASCII)  # EC2: 8 or 17 hex digits


class Malformed(ValueError):
    """The message is not an event we can read (not JSON, not an object, a field missing or wrong)."""


@dataclass(frozen=True)
class Notice:
    """One event about one instance. ``at``: the event's time (seconds since the epoch), None when absent."""

    kind: Kind
    instance_id: str | None
    at: float | None = None
    state: str | None = None  # STATE_CHANGE: the instance's new state
    detail_type: str = ""
    event_id: str = ""

    @property
    def urgent(self) -> bool:
        """Worth a poll at once."""
        return self.kind in (Kind.INTERRUPTION, Kind.REBALANCE) or (
            self.kind is Kind.STATE_CHANGE and self.state in GOING_STATES
        )


def event_time(text: object) -> float | None:
    """EventBridge's ``time`` (``2026-12-02T19:47:43Z``) as seconds since the epoch; None when unreadable."""
    if not isinstance(text, str):
        return None
    try:
        when = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return when.timestamp()


def parse(body: str) -> Notice:
    """An SQS message body -> Notice. Raises :class:`Malformed` with one line saying what is wrong.

    Events of other types (AWS Health, say) are Kind.OTHER with no instance:
    the queue may carry more than we act on, and that is not an error.
    """
    try:
        event = json.loads(body)
    except (ValueError, TypeError) as exc:
        raise Malformed(f"not JSON ({exc})") from None
    if not isinstance(event, dict):
        raise Malformed(f"not a JSON object but {type(event).__name__}")
    detail_type = event.get("detail-type")
    if not isinstance(detail_type, str) or not isinstance(event.get("source"), str):
        raise Malformed("no 'detail-type' and 'source': not an EventBridge event")
    kind = DETAIL_TYPES.get(detail_type) if event["source"] == "aws.ec2" and event.get("version") == "0" else None
    event_id = str(event.get("id") or "")
    if kind is None:
        return Notice(Kind.OTHER, None, event_time(event.get("time")), detail_type=detail_type, event_id=event_id)
    detail = event.get("detail")
    if not isinstance(detail, dict):
        raise Malformed(f"{detail_type!r} without a 'detail' object")
    instance_id = detail.get("instance-id")
    if not isinstance(instance_id, str) or not _INSTANCE_ID.fullmatch(instance_id):
        raise Malformed(f"{detail_type!r} without a valid 'detail.instance-id' ({instance_id!r})")
    state = None
    if kind is Kind.STATE_CHANGE:
        state = detail.get("state")
        if not isinstance(state, str) or not state:
            raise Malformed(f"{detail_type!r} without 'detail.state'")
        state = state.lower()  # every state is kept: ``urgent`` says whether it is worth hurrying for
    return Notice(kind, instance_id, event_time(event.get("time")), state, detail_type, event_id)


def describe(notice: Notice) -> str:
    """The notice as the log shows it."""
    what = {
        Kind.INTERRUPTION: "spot interruption warning",
        Kind.REBALANCE: "rebalance recommendation",
        Kind.STATE_CHANGE: f"state change to {notice.state}",
        Kind.OTHER: f"{notice.detail_type!r} event",
    }[notice.kind]
    return f"{what} for {notice.instance_id}" if notice.instance_id else what
