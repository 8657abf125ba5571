# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The interruption queue: the SQS adapter (stubbed botocore), its receiver thread, and the daemon's use of it
(fakes for EC2, Apache and the readiness check, as in test_daemon.py). Against moto's SQS over HTTP:
tests/system/test_interruptions.py."""

from __future__ import annotations

import dataclasses
import logging
import threading
import typing as t

import boto3
import pytest
from botocore.stub import Stubber

from ansible_collections.gmod.gbrowse_aws.plugins.module_utils import _daemon
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._conf import ConfError, parse_conf
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._sqs import (
    Message,
    Queue,
    QueueError,
    QueueWatcher,
    queue_arn,
    queue_region,
)
from ansible_collections.gmod.gbrowse_aws.tests.support import interruptions as events
from ansible_collections.gmod.gbrowse_aws.tests.unit.plugins.module_utils.test_daemon import make  # noqa: F401  # pylint: disable=unused-import

URL = "https://sqs.us-west-2.amazonaws.com/123456789012/gbrowse-interruptions"


# --------------------------------------------------------------------------
# the conf key


@pytest.mark.parametrize(
    "value, expected",
    [
        (URL, URL),
        ("http://127.0.0.1:5000/123456789012/q", "http://127.0.0.1:5000/123456789012/q"),
        ("https://sqs.us-west-2.amazonaws.com/123456789012/q.fifo", "https://sqs.us-west-2.amazonaws.com/123456789012/q.fifo"),
        ("", None),  # set empty: no queue
    ],
)
def test_interruption_queue_key(value, expected) -> None:
    conf = parse_conf(f"[LOAD TABLE]\n0 0 0\n[MASTER]\ninterruption_queue = {value}\n[SLAVE]\n", "t.conf")
    assert conf.master.interruption_queue == expected


@pytest.mark.parametrize(
    "value",
    [
        "sqs.us-west-2.amazonaws.com/123456789012/q",  # no scheme
        "arn:aws:sqs:us-west-2:123456789012:q",  # an ARN is not a URL
        "https://sqs.us-west-2.amazonaws.com/q",  # no account
        "https://sqs.us-west-2.amazonaws.com/123456789012/q?x=1",
        "https://sqs.us-west-2.amazonaws.com/123456789012/bad name",
    ],
)
def test_interruption_queue_key_refuses_what_is_no_queue_url(value) -> None:
    with pytest.raises(ConfError) as caught:
        parse_conf(f"[LOAD TABLE]\n0 0 0\n[MASTER]\ninterruption_queue = {value}\n[SLAVE]\n", "t.conf")
    assert str(caught.value).startswith("t.conf:4: ") and "interruption_queue" in str(caught.value)


def test_queue_region_and_arn() -> None:
    assert queue_region(URL) == "us-west-2"
    assert queue_arn(URL) == "arn:aws:sqs:us-west-2:123456789012:gbrowse-interruptions"
    assert queue_region("http://127.0.0.1:5000/123456789012/q") is None
    assert queue_arn("http://127.0.0.1:5000/123456789012/q") is None


# --------------------------------------------------------------------------
# the adapter: two calls, errors named


@pytest.fixture
def sqs() -> t.Iterator[tuple[Queue, Stubber]]:
    client = boto3.session.Session(aws_access_key_id="a", aws_secret_access_key="b", region_name="us-west-2").client(
        "sqs"
    )
    with Stubber(client) as stub:
        yield Queue(client, URL), stub
        stub.assert_no_pending_responses()


def test_receive_long_polls_and_hides_what_it_received(sqs) -> None:
    queue, stub = sqs
    stub.add_response(
        "receive_message",
        {"Messages": [{"MessageId": "m1", "ReceiptHandle": "r1", "Body": "{}"}]},
        {"QueueUrl": URL, "MaxNumberOfMessages": 10, "WaitTimeSeconds": 7, "VisibilityTimeout": 60},
    )
    stub.add_response("receive_message", {}, None)
    assert queue.receive(7) == [Message("{}", "r1", "m1")]
    assert queue.receive() == []


def test_delete_reports_each_failure_and_goes_on(sqs) -> None:
    queue, stub = sqs
    stub.add_client_error("delete_message", "ReceiptHandleIsInvalid", "gone", expected_params={"QueueUrl": URL, "ReceiptHandle": "r1"})
    stub.add_response("delete_message", {}, {"QueueUrl": URL, "ReceiptHandle": "r2"})
    errors = queue.delete(["r1", "r2"])
    assert errors == ["Failed to delete from the interruption queue: ReceiptHandleIsInvalid: gone"]


def test_a_missing_queue_is_named(sqs) -> None:
    queue, stub = sqs
    stub.add_client_error("receive_message", "AWS.SimpleQueueService.NonExistentQueue", "The specified queue does not exist")
    with pytest.raises(QueueError) as caught:
        queue.receive(1)
    assert caught.value.missing and "Failed to receive from the interruption queue" in str(caught.value)


class ScriptedQueue:
    """Answers receive() from a script (a list of message lists or exceptions); records deletes."""

    def __init__(self, script: list[t.Any]) -> None:
        self.url = URL
        self.script = script
        self.deleted: list[str] = []
        self.empty = threading.Event()

    def receive(self, wait: int = 0) -> list[Message]:
        if not self.script:
            self.empty.set()
            threading.Event().wait(0.01)
            return []
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        return step

    def delete(self, receipts: t.Iterable[str]) -> list[str]:
        self.deleted += list(receipts)
        return []


def test_watcher_hands_messages_over_wakes_the_loop_and_deletes_what_was_handled(monkeypatch, caplog) -> None:
    monkeypatch.setattr("ansible_collections.gmod.gbrowse_aws.plugins.module_utils._sqs.BACKOFF_MIN", 0.01)
    first = [Message("a", "r1"), Message("b", "r2")]
    queue = ScriptedQueue([QueueError("Failed to receive from the interruption queue: AccessDenied: no", "AccessDenied"), first])
    woken = threading.Event()
    caplog.set_level(logging.INFO, logger="gbrowse_aws.balancer")
    watcher = QueueWatcher(queue, woken.set, wait=1).start()  # type: ignore[arg-type]
    try:
        assert woken.wait(10)
        taken = watcher.take()
        assert taken == first and watcher.take() == []
        watcher.done(taken)
        assert queue.empty.wait(10)
        queue.empty.clear()
        assert queue.empty.wait(10)  # a turn after done(): the deletes happened before it
        assert queue.deleted == ["r1", "r2"]
    finally:
        watcher.stop()
    logged = [r.getMessage() for r in caplog.records]
    assert any("AccessDenied" in line for line in logged)  # the error, once
    assert any(line.startswith("Receiving from the interruption queue") for line in logged)  # and its end
    assert watcher.error is None


# --------------------------------------------------------------------------
# the daemon


def _messages(*bodies: str) -> list[Message]:
    return [Message(body, f"r{n}", f"m{n}") for n, body in enumerate(bodies)]


def test_interruption_takes_the_slave_out_and_launches_its_replacement(make, tmp_path, caplog) -> None:  # noqa: F811
    bal, ec2, now = make([20] * 5, drain=60)
    bal.poll()
    ec2.reveal()
    now[0] += 30
    assert bal.poll().counts["ready"] == 2
    farm = tmp_path / "farm" / "renderfarm.conf"
    assert "127.100.1.1:8101" in farm.read_text()
    caplog.set_level(logging.DEBUG, logger="gbrowse_aws.balancer")
    urgent = bal.read_queue(
        _messages(events.spot_interruption_warning("i-0001", at=now[0] - 2), *events.GARBAGE,
                  events.spot_interruption_warning("i-0123456789abcdef0"), events.health_event())
    )
    assert urgent
    assert bal.fleet.interrupted == {"i-0001": now[0] - 2} and bal.fleet.at_risk == {}
    now[0] += 1
    report = bal.poll()
    assert "127.100.1.1" not in farm.read_text() and "127.100.1.2:8101" in farm.read_text()
    assert report.launched == ["i-0003"] and ec2.launches == [2, 1]
    assert "i-0001" in bal.draining and ec2.terminated == []  # spot takes it, or the drain ends it
    lines = [r.getMessage() for r in caplog.records]
    assert sum("is not an EC2 event" in line for line in lines) == len(events.GARBAGE)
    assert any("not one of our slaves" in line and "i-0123456789abcdef0" in line for line in lines)
    assert (
        "Slave i-0001 at 127.100.1.1 left the render farm: spot interruption warning from EC2"
        " (draining: terminated in 60 s)" in lines
    )
    assert any(line.startswith("Slave i-0003 at (no address yet) launched: ") and "warned by EC2" in line for line in lines)
    now[0] += 30
    assert bal.poll().plan.launch == 0  # the replacement is pending: no second one


def test_rebalance_launches_first_and_retires_once_the_replacement_is_ready(make, tmp_path) -> None:  # noqa: F811
    answering = {"127.100.1.1", "127.100.1.2"}
    bal, ec2, now = make([20] * 6, drain=60, ready=lambda address: address in answering)
    farm = tmp_path / "farm" / "renderfarm.conf"
    bal.poll()
    ec2.reveal()
    now[0] += 30
    assert bal.poll().counts["ready"] == 2
    assert bal.read_queue(_messages(events.rebalance_recommendation("i-0001", at=now[0])))
    now[0] += 1
    report = bal.poll()
    assert report.launched == ["i-0003"] and "127.100.1.1:8101" in farm.read_text()  # launched, still serving
    ec2.reveal()
    # EC2 describes it launched after the notice (the fake's launch times are fixed: 1090 + n).
    ec2.visible = [dataclasses.replace(i, launched=now[0]) if i.id == "i-0003" else i for i in ec2.visible]
    now[0] += 11
    assert not bal.join_ready()  # described now, booting: i-0001 keeps serving
    assert "127.100.1.1:8101" in farm.read_text() and bal.draining == {}
    answering.add("127.100.1.3")
    now[0] += 3
    assert bal.join_ready() and bal.fleet.at_risk  # the replacement answers: the loop polls now
    now[0] += 1
    retire = bal.poll()
    text = farm.read_text()
    assert "127.100.1.1" not in text and "127.100.1.2:8101" in text and "127.100.1.3:8101" in text
    assert list(bal.draining) == ["i-0001"] and retire.plan.launch == 0 and ec2.launches == [2, 1]


def test_state_changes_poll_now_only_for_ours_going_and_not_terminated_by_us(make) -> None:  # noqa: F811
    bal, ec2, now = make([20, 20])
    bal.poll()
    ec2.reveal()
    now[0] += 30
    bal.poll()
    assert not bal.read_queue(_messages(events.state_change("i-0001", "running")))
    assert bal.read_queue(_messages(events.state_change("i-0001", "stopping")))
    assert not bal.read_queue(_messages(events.state_change("i-0fffffffffffffff0", "terminated")))
    bal.fleet.terminated_now(["i-0002"], now[0])
    assert not bal.read_queue(_messages(events.state_change("i-0002", "shutting-down")))
    assert bal.fleet.interrupted == {} and bal.fleet.at_risk == {}


class OneShotQueue:
    def __init__(self, messages: list[Message]) -> None:
        self.messages = messages
        self.handled: list[Message] = []
        self.stopped = False

    def take(self) -> list[Message]:
        taken, self.messages = self.messages, []
        return taken

    def done(self, messages: t.Iterable[Message]) -> None:
        self.handled += list(messages)

    def stop(self) -> None:
        self.stopped = True


class NoWaitSignals(_daemon.Signals):
    """Fails the test if the loop would sleep after the queue's message instead of polling."""

    def __init__(self, queue: OneShotQueue) -> None:
        super().__init__()
        self.queue = queue

    def wait(self, seconds: float) -> None:
        if self.queue.handled:
            raise AssertionError(f"the loop went to sleep for {seconds} s instead of polling at once")
        super().wait(0)


def test_the_loop_polls_at_once_on_a_notice_and_hands_the_messages_back(make) -> None:  # noqa: F811
    bal, ec2, now = make([20, 20, 20, 20, 20])
    bal.poll()
    ec2.reveal()
    now[0] += 30
    bal.poll()
    bal.dry_run = True  # the loop's bookkeeping only; the poll's actions are tested above
    queue = OneShotQueue(_messages("garbage", events.spot_interruption_warning("i-0001")))
    signals = NoWaitSignals(queue)
    reports: list[t.Any] = []

    def on_report(report: t.Any) -> None:
        reports.append(report)
        signals.stop = True

    code = _daemon.run(
        bal, signals=signals, notifier=_daemon.Notifier({}), reload_conf=lambda: None, on_report=on_report,
        monotonic=lambda: 0.0, queue=queue,
    )
    assert code == 0 and len(reports) == 1 and queue.stopped
    assert [m.receipt for m in queue.handled] == ["r0", "r1"]
    assert "http://127.100.1.1:8101" not in reports[0].renderers


def test_before_the_first_look_a_notice_is_kept_and_the_look_forgets_what_is_not_ours(make, tmp_path) -> None:  # noqa: F811
    """A restarted balancer hears of an interruption before its first poll: it polls at once and acts."""
    bal, ec2, now = make([20] * 3, drain=60)
    bal.poll()
    ec2.reveal()
    now[0] += 30
    bal.poll()
    restarted, dummy, dummy2 = make([20] * 3, drain=60)
    restarted.ec2 = restarted.fleet.ec2 = ec2  # the same fleet, adopted
    assert restarted.read_queue(
        _messages(events.spot_interruption_warning("i-0001"), events.spot_interruption_warning("i-0fff0000"))
    )
    assert set(restarted.fleet.interrupted) == {"i-0001", "i-0fff0000"}
    report = restarted.poll()
    assert set(restarted.fleet.interrupted) == {"i-0001"}  # the foreign one forgotten by the look
    assert all("127.100.1.1:" not in r for r in report.renderers) and report.launched
