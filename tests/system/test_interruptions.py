# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The interruption queue end to end: the real balancer command, moto's SQS and EC2 over HTTP (one
endpoint), EventBridge's event JSON sent by hand (tests/support/interruptions.py), slave stand-ins.

Polls are 30 s apart, so what happens within seconds of a message is the queue's doing, not a poll's.
The adaptive policy polls early once (a fleet of 0 wants 1), so the slave is ready within ~20 s.
"""

from __future__ import annotations

import time
import typing as t

from ansible_collections.gmod.gbrowse_aws.tests.support import interruptions as events
from ansible_collections.gmod.gbrowse_aws.tests.support.loopback import EC2Proxy
from ansible_collections.gmod.gbrowse_aws.tests.support.moto import run_foreign_instances
from ansible_collections.gmod.gbrowse_aws.tests.system.test_balancer import ours, urls, world  # noqa: F401  # pylint: disable=unused-import


def _queue(world: t.Any) -> tuple[t.Any, str]:  # noqa: F811
    sqs = world.moto.client("sqs")
    return sqs, sqs.create_queue(QueueName="gbrowse-interruptions")["QueueUrl"]


def _conf(world: t.Any, url: str) -> t.Any:  # noqa: F811
    return world.conf(
        table=((0.0, 1, 1),),
        poll_interval=0.5,
        extra_master={"interruption_queue": url, "scaling_policy": "adaptive"},
    )


def _one_ready_slave(world: t.Any, bal: t.Any) -> tuple[str, str]:  # noqa: F811
    bal.wait_ready()
    deadline = time.monotonic() + 45
    while not bal.renderers() and time.monotonic() < deadline:
        time.sleep(0.1)
    (victim, address), = ours(world.ec2).items()
    assert bal.renderers() == urls([address]), bal.log_tail()
    return victim, address


def _wait(predicate: t.Callable[[], t.Any], timeout: float, what: str, bal: t.Any) -> t.Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"no {what} within {timeout} s; log:\n{bal.log_tail()}")


class SQSRecorder(EC2Proxy):
    """A pass-through proxy in front of moto recording the SQS operations (JSON protocol: X-Amz-Target)."""

    def __init__(self, upstream_url: str) -> None:
        super().__init__(upstream_url)
        self.operations: list[str] = []

    def start(self) -> SQSRecorder:
        super().start()
        # A long poll under way when the balancer exits is answered to a closed socket: not worth a traceback.
        t.cast(t.Any, self._server).handle_error = lambda request, address: None
        return self

    def answered(self, action: t.Any, params: t.Any, status: int, data: bytes, headers: t.Any) -> bytes:
        target = headers.get("X-Amz-Target") or ""
        if target.startswith("AmazonSQS."):
            self.operations.append(target.split(".", 1)[1])
        return data


def _iam_sqs_actions() -> set[str]:
    import json
    from pathlib import Path

    policy = json.loads((Path(__file__).parents[2] / "docs" / "iam-policy.json").read_text(encoding="utf-8"))
    actions = [a for s in policy["Statement"] for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])]
    return {a.split(":", 1)[1] for a in actions if a.startswith("sqs:")}


def _queue_empty(sqs: t.Any, url: str) -> bool:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return attributes == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}


def test_spot_interruption_warning_takes_the_slave_out_at_once_and_replaces_it(world):  # noqa: F811
    sqs, url = _queue(world)
    with SQSRecorder(world.moto.url) as recorder, world.balancer(
        _conf(world, url), env={**world.moto.environ(), "AWS_ENDPOINT_URL_SQS": recorder.url}
    ) as bal:
        victim, address = _one_ready_slave(world, bal)
        polls = len(bal.reports())
        sent = time.monotonic()
        sqs.send_message(QueueUrl=url, MessageBody=events.spot_interruption_warning(victim))
        _wait(lambda: urls([address])[0] not in bal.renderers(), 25, "slave out of renderfarm.conf", bal)
        elapsed = time.monotonic() - sent
        print(f"spot interruption warning sent -> slave out of renderfarm.conf: {elapsed:.2f} s")
        assert f"spot interruption warning for {victim}: acting now" in bal.log_tail(20000)
        report = _wait(lambda: bal.reports()[polls:], 10, "the poll's report", bal)[0]
        assert len(report["launched"]) == 1 and victim not in report["launched"], report
        replacement = report["launched"][0]
        assert replacement in ours(world.ec2) and victim not in ours(world.ec2)  # drain_time 0: terminated now
        _wait(lambda: bal.renderers() == urls([ours(world.ec2)[replacement]]), 30, "the replacement in the farm", bal)
        assert report["interrupted"] == [victim] and report["retired"] == []
        _wait(lambda: _queue_empty(sqs, url), 15, "the message deleted", bal)
        assert bal.terminate() == 0
    # The balancer's SQS calls, seen on the wire, are docs/iam-policy.json's (through AWS_ENDPOINT_URL_SQS).
    assert set(recorder.operations) == _iam_sqs_actions() == {"ReceiveMessage", "DeleteMessage"}


def test_rebalance_recommendation_replaces_first_then_retires(world):  # noqa: F811
    sqs, url = _queue(world)
    with world.balancer(_conf(world, url)) as bal:
        old, address = _one_ready_slave(world, bal)
        sqs.send_message(QueueUrl=url, MessageBody=events.rebalance_recommendation(old))
        launched = _wait(lambda: [i for i in ours(world.ec2) if i != old], 15, "a replacement launched", bal)
        assert urls([address])[0] in bal.renderers()  # the slave at risk serves until the replacement does
        (new,) = launched
        _wait(lambda: old not in ours(world.ec2), 40, "the old slave retired", bal)
        assert bal.renderers() == urls([ours(world.ec2)[new]]), bal.log_tail()
        assert list(ours(world.ec2)) == [new]  # the same count of slaves, the one at risk gone
        log = bal.log_tail(50000)
        assert f"Slave {old} at {address} left the render farm: rebalance recommendation from EC2: its replacement is ready" in log
        assert f"Slave {old} at {address} terminated: rebalance recommendation from EC2: replaced" in log
        assert [r["retired"] for r in bal.reports() if r["retired"]] == [[old]]
        assert bal.terminate() == 0


def test_foreign_events_and_garbage_are_deleted_and_ignored(world):  # noqa: F811
    sqs, url = _queue(world)
    (foreign,) = run_foreign_instances(world.ec2, None)
    with world.balancer(_conf(world, url)) as bal:
        victim, address = _one_ready_slave(world, bal)
        bodies = [
            events.spot_interruption_warning(foreign),
            events.rebalance_recommendation(foreign),
            events.state_change(foreign, "terminated"),
            events.health_event(),
            *events.GARBAGE,
        ]
        for body in bodies:
            sqs.send_message(QueueUrl=url, MessageBody=body or " ")  # SQS refuses an empty body
        _wait(lambda: _queue_empty(sqs, url), 30, "every message deleted", bal)
        log = bal.log_tail(50000)
        assert log.count("is not an EC2 event") == len(events.GARBAGE), log
        assert log.count(f"for {foreign}: not one of our slaves, ignored") == 3, log
        assert "acting now" not in log
        assert bal.proc is not None and bal.proc.poll() is None
        assert bal.renderers() == urls([address]) and list(ours(world.ec2)) == [victim]
        assert world.ec2.describe_instances(InstanceIds=[foreign])["Reservations"][0]["Instances"][0]["State"][
            "Name"
        ] == "running"
        assert bal.terminate() == 0


def test_the_playbook_makes_the_queue_rules_and_policy_idempotently_and_removes_them(moto_server, tmp_path):
    """playbooks/interruption_queue.yml against moto: apply (changed), apply again (not changed), absent."""
    import json
    import re
    import subprocess
    import sys
    from pathlib import Path

    conf = tmp_path / "aws_balancer.conf"
    conf.write_text("[LOAD TABLE]\n0 0 0\n[MASTER]\n[SLAVE]\n", encoding="utf-8")
    env = {
        **moto_server.environ(),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_LOCALHOST_WARNING": "0",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0",
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
    }
    playbook = Path(__file__).parents[2] / "playbooks" / "interruption_queue.yml"

    def play(*extra: str) -> tuple[int, int]:
        out = subprocess.run(
            [str(Path(sys.executable).parent / "ansible-playbook"), str(playbook), *extra],
            env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300, check=False, cwd=tmp_path,
        )
        recap = re.search(r"ok=(\d+)\s+changed=(\d+)\s+unreachable=0\s+failed=0", out.stdout)
        assert out.returncode == 0 and recap, out.stdout + out.stderr
        return int(recap.group(1)), int(recap.group(2))

    assert play("-e", f"gbrowse_interruption_conf={conf}")[1] > 0
    assert play("-e", f"gbrowse_interruption_conf={conf}")[1] == 0
    sqs, events_client = moto_server.client("sqs"), moto_server.client("events")
    url = sqs.get_queue_url(QueueName="gbrowse-interruptions")["QueueUrl"]
    assert f"interruption_queue = {url}" in conf.read_text(encoding="utf-8")
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["MessageRetentionPeriod"] == "300"
    (statement,) = json.loads(attributes["Policy"])["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"} and statement["Action"] == "sqs:SendMessage"
    rules = {r["Name"]: r for r in events_client.list_rules(NamePrefix="gbrowse-interruptions")["Rules"]}
    assert sorted(statement["Condition"]["ArnEquals"]["aws:SourceArn"]) == sorted(r["Arn"] for r in rules.values())
    patterns = {json.loads(r["EventPattern"])["detail-type"][0] for r in rules.values()}
    assert patterns == {
        "EC2 Spot Instance Interruption Warning",
        "EC2 Instance Rebalance Recommendation",
        "EC2 Instance State-change Notification",
    }
    for name in rules:
        (target,) = events_client.list_targets_by_rule(Rule=name)["Targets"]
        assert target["Arn"] == attributes["QueueArn"]
    play("-e", "gbrowse_interruption_state=absent")
    assert events_client.list_rules(NamePrefix="gbrowse-interruptions")["Rules"] == []
    assert not sqs.list_queues().get("QueueUrls")
