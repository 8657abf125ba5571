# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The Prometheus metrics: what a poll's report moves, EC2 calls by code, metrics_listen, a scrape.

The daemon's fakes (EC2, Apache, readiness) are test_daemon's; the metrics
are real (a private prometheus_client registry, read back sample by sample).
A scrape of the real command is tests/system/test_metrics.py.
"""

from __future__ import annotations

import dataclasses
import socket
import sys
import typing as t
import urllib.request

import pytest
from botocore.stub import Stubber

from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._conf import ConfError, parse_conf
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._daemon import Balancer
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._ec2 import EC2, EC2Error, make_client
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._fleet import Master
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._metrics import (
    REASONS,
    MetricsError,
    NoMetrics,
    PrometheusMetrics,
    parse_listen,
    require_prometheus_client,
    start_metrics,
)
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._status import StatusError
from ansible_collections.gmod.gbrowse_aws.tests.unit.plugins.module_utils.test_daemon import (
    CONF,
    FakeEC2,
    FakeMeter,
    _probe,
)


def value(metrics: PrometheusMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def terminated(metrics: PrometheusMetrics) -> dict[str, float]:
    return {r: value(metrics, "gbrowse_aws_slaves_terminated_total", reason=r) or 0.0 for r in REASONS}


def only(**counts: int) -> dict[str, float]:
    """Every reason 0 but ``counts`` (``not_ready`` for "not ready", ``scale_in`` for "scale-in")."""
    return {r: float(counts.get(r.replace(" ", "_").replace("-", "_"), 0)) for r in REASONS}


@pytest.fixture
def balancer(tmp_path: t.Any) -> t.Callable[..., tuple[Balancer, FakeEC2, list[float], PrometheusMetrics]]:
    def build(rates: list[t.Any], ready: t.Callable[[str], bool] = lambda address: True):
        conf = parse_conf(CONF.format(farm=tmp_path / "renderfarm.conf", policy="immediate", drain=0), "test.conf")
        conf = dataclasses.replace(conf, slave=dataclasses.replace(conf.slave, spot_bid=0.25))
        ec2 = FakeEC2(generation=conf.poll_settings().generation)
        now = [1100.0]
        metrics = PrometheusMetrics(clock=lambda: now[0])
        bal = Balancer(
            conf,
            ec2=ec2,  # type: ignore[arg-type]
            meter=FakeMeter(list(rates)),  # type: ignore[arg-type]
            master=Master(),
            clock=lambda: now[0],
            check=lambda targets, port, timeout: {i: _probe(ready(a)) for i, a in targets.items()},
            reload=lambda command: None,
            metrics=metrics,
        )
        bal._spec = object()  # type: ignore[assignment]  # no image lookup in unit tests
        return bal, ec2, now, metrics

    return build


def test_a_scale_out_and_in_moves_the_gauges_and_counters(balancer):
    bal, ec2, now, m = balancer([20, 20, 20, 0])
    assert value(m, "gbrowse_aws_load") != value(m, "gbrowse_aws_load")  # NaN before the first poll
    bal.poll()  # 20 req/s: band 2-3, two launched
    assert value(m, "gbrowse_aws_slaves_launched_total") == 2
    assert (value(m, "gbrowse_aws_band_min_slaves"), value(m, "gbrowse_aws_band_max_slaves")) == (2, 3)
    assert value(m, "gbrowse_aws_load") == 20
    assert value(m, "gbrowse_aws_slaves", state="pending") == 0  # as the poll counted them, before it launched
    assert value(m, "gbrowse_aws_poll_duration_seconds_count") == 1
    assert value(m, "gbrowse_aws_last_poll_timestamp_seconds") == 1100.0
    ec2.reveal()
    now[0] += 30
    bal.poll()  # described and answering: ready, and running at 0.25 $/h each
    assert value(m, "gbrowse_aws_slaves", state="ready") == 2
    assert value(m, "gbrowse_aws_slaves", state="pending") == 0
    assert value(m, "gbrowse_aws_spend_upper_bound_dollars_per_hour") == 0.5
    now[0] += 30
    bal.poll()
    assert value(m, "gbrowse_aws_slaves_launched_total") == 2  # nothing more
    now[0] += 30
    bal.poll()  # no load: both scaled in
    assert terminated(m) == only(scale_in=2)
    assert value(m, "gbrowse_aws_poll_duration_seconds_count") == 4
    assert value(m, "gbrowse_aws_holding") == 0


def test_a_slave_never_ready_is_counted_as_not_ready(balancer):
    bal, ec2, now, m = balancer([20, 20, 20], ready=lambda address: False)
    bal.poll()
    ec2.reveal()
    now[0] += 30
    bal.poll()
    now[0] += 61  # ready_timeout is 1 min
    report = bal.poll()
    assert len(report.expired) == 2
    assert terminated(m)["not ready"] == 2 and terminated(m)["scale-in"] == 0
    assert value(m, "gbrowse_aws_slaves_launched_total") == 4  # replaced in the same poll


def test_slaves_lost_behind_its_back_are_reclaimed_or_vanished(balancer):
    bal, ec2, now, m = balancer([20, 20, 20, 20])
    bal.poll()
    ec2.reveal()
    now[0] += 30
    bal.poll()
    first, second = ec2.visible
    # The spot market took one back (EC2 says so); the other is gone from DescribeInstances.
    ec2.visible = [dataclasses.replace(first, state="shutting-down", state_reason="Server.SpotInstanceTermination")]
    now[0] += 30
    bal.poll()
    assert terminated(m) == only(reclaimed=1, vanished=1)
    ec2.reveal()  # the replacements
    now[0] += 30
    bal.poll()  # the reclaimed one still described shutting down: counted once
    assert terminated(m)["reclaimed"] == 1 and terminated(m)["vanished"] == 1


def test_what_was_going_before_the_start_is_not_counted(balancer):
    bal, ec2, now, m = balancer([0])
    ec2.launch(1, None)
    ec2.reveal()
    ec2.visible = [dataclasses.replace(ec2.visible[0], state="shutting-down")]
    bal.poll()
    assert terminated(m)["reclaimed"] == 0


def test_status_failures_and_holding_are_counted(balancer, tmp_path):
    bal, ec2, now, m = balancer([StatusError("refused"), 20])
    (tmp_path / "renderfarm.conf").write_text("[GENERAL]\nrenderfarm = 1\nremote renderer = http://gone:8101\n")
    bal.reload_apache = lambda command: "reload failed"
    bal.poll()  # a stale farm: rewritten, but the reload fails
    assert value(m, "gbrowse_aws_status_read_failures_total") == 1
    assert value(m, "gbrowse_aws_load") != value(m, "gbrowse_aws_load")  # unknown: NaN
    assert value(m, "gbrowse_aws_holding") == 1
    bal.reload_apache = lambda command: None
    now[0] += 30
    bal.poll()
    assert value(m, "gbrowse_aws_holding") == 0
    assert value(m, "gbrowse_aws_slaves_launched_total") == 2


def test_a_dry_run_counts_no_termination(balancer):
    bal, ec2, now, m = balancer([20, 0])
    ec2.launch(3, None)
    ec2.reveal()
    bal.dry_run = True
    bal.poll()
    now[0] += 30
    bal.poll()
    assert sum(terminated(m).values()) == 0


def test_shutdown_counts_what_it_terminates(balancer):
    bal, ec2, now, m = balancer([20])
    ec2.launch(2, None)
    ec2.reveal()
    bal.poll()
    bal.ec2.delete_launch_template = bal.ec2.delete_security_group = lambda: True  # type: ignore[attr-defined]
    bal.shutdown(wait=0)
    assert terminated(m)["shutdown"] == 2


@pytest.fixture
def stubbed(monkeypatch: pytest.MonkeyPatch) -> t.Iterator[tuple[EC2, Stubber]]:
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_EC2", raising=False)
    client = make_client("us-west-2", access_key="AKIAUNITTEST", secret_key="unit-dummy", endpoint_url="http://127.0.0.1:9")
    with Stubber(client) as stub:
        yield EC2(client, "unit"), stub


def test_ec2_calls_are_counted_by_action_and_code(stubbed):
    ec2, stub = stubbed
    m = PrometheusMetrics()
    m.watch_ec2(ec2.client)
    stub.add_response("describe_instances", {"Reservations": []})
    stub.add_client_error("describe_instances", "RequestLimitExceeded", "slow down", 503)
    stub.add_client_error("terminate_instances", "UnauthorizedOperation", "no", 403)
    ec2.describe_fleet()
    with pytest.raises(EC2Error):
        ec2.describe_fleet()
    with pytest.raises(Exception):
        ec2.client.terminate_instances(InstanceIds=["i-1"])
    calls = "gbrowse_aws_ec2_calls_total"
    assert value(m, calls, action="DescribeInstances", code="OK") == 1
    assert value(m, calls, action="DescribeInstances", code="RequestLimitExceeded") == 1
    assert value(m, calls, action="TerminateInstances", code="UnauthorizedOperation") == 1


def test_an_unreachable_endpoint_is_counted_by_its_exception(monkeypatch):
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    client = make_client("us-west-2", access_key="A", secret_key="B", endpoint_url="http://127.0.0.1:9", max_attempts=1)
    m = PrometheusMetrics()
    m.watch_ec2(client)
    with pytest.raises(EC2Error):
        EC2(client, "unit").describe_fleet()
    samples = {s.labels["code"]: s.value for s in m.registry.collect() for s in s.samples if s.name.endswith("ec2_calls_total")}
    assert samples == {"EndpointConnectionError": 1.0}


@pytest.mark.parametrize(
    "text, expected",
    [
        ("127.0.0.1:9465", ("127.0.0.1", 9465)),
        ("localhost:1", ("localhost", 1)),
        ("0.0.0.0:65535", ("0.0.0.0", 65535)),
        ("[::1]:9465", ("::1", 9465)),
        ("metrics.example.org:9465", ("metrics.example.org", 9465)),
    ],
)
def test_listen_addresses(text, expected):
    assert parse_listen(text) == expected


@pytest.mark.parametrize(
    "text, message",
    [
        ("9465", "is not HOST:PORT"),
        (":9465", "is not HOST:PORT"),
        ("127.0.0.1:0", "from 1 to 65535"),
        ("127.0.0.1:65536", "from 1 to 65535"),
        ("127.0.0.1:http", "from 1 to 65535"),
        ("::1:9465", "in brackets"),
        ("[127.0.0.1]:9465", "only an IPv6 address"),
        ("http://127.0.0.1:9465", "not a host name"),
    ],
)
def test_listen_addresses_refused(text, message):
    with pytest.raises(ValueError, match=message):
        parse_listen(text)


def test_metrics_listen_in_the_conf_names_file_and_line():
    text = "[LOAD TABLE]\n0 0 1\n[MASTER]\nmetrics_listen = 127.0.0.1:99999\n[SLAVE]\n"
    with pytest.raises(ConfError) as caught:
        parse_conf(text, "b.conf")
    assert caught.value.errors == ["b.conf:4: metrics_listen: '127.0.0.1:99999': the port must be a number from 1 to 65535"]
    assert parse_conf(text.replace("99999", "9465"), "b.conf").master.metrics_listen == "127.0.0.1:9465"
    assert parse_conf(text.replace("127.0.0.1:99999", ""), "b.conf").master.metrics_listen is None


def test_without_metrics_listen_prometheus_client_is_not_needed(monkeypatch):
    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # import fails as if not installed
    assert type(start_metrics(None)) is NoMetrics  # pylint: disable=unidiomatic-typecheck
    with pytest.raises(MetricsError, match="prometheus_client is not installed"):
        require_prometheus_client()
    with pytest.raises(MetricsError, match="prometheus_client is not installed"):
        start_metrics("127.0.0.1:9465")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_served_on_loopback_with_only_our_metrics():
    port = _free_port()
    metrics = start_metrics(f"127.0.0.1:{port}")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            text = answer.read().decode()
        names = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")}
        assert "gbrowse_aws_slaves_terminated_total" in names and "gbrowse_aws_poll_duration_seconds" in names
        assert all(n.startswith("gbrowse_aws_") for n in names), names  # no process_/python_ collectors
        with pytest.raises(MetricsError, match=f"metrics_listen 127.0.0.1:{port}: cannot listen"):
            start_metrics(f"127.0.0.1:{port}")  # taken
    finally:
        metrics.close()


def test_the_docs_dashboard_and_alerts_name_only_real_metrics():
    """docs/metrics.md lists every metric; the dashboard and the alert rules use no other."""
    import json
    import re
    from pathlib import Path

    import yaml

    top = Path(__file__).resolve().parents[4]
    families = {m.name for m in PrometheusMetrics().registry.collect()}
    names = set()
    for family in families:
        names |= {family, family + "_total", family + "_bucket", family + "_count", family + "_sum"}
    doc = (top / "docs/metrics.md").read_text(encoding="utf-8")
    for family in families:
        listed = family + "_total" if f"`{family}_total`" in doc else family
        assert f"`{listed}`" in doc, family
    dashboard = json.loads((top / "docs/metrics/grafana-dashboard.json").read_text(encoding="utf-8"))
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    rules = yaml.safe_load((top / "docs/metrics/alerts.yml").read_text(encoding="utf-8"))["groups"][0]["rules"]
    exprs += [rule["expr"] for rule in rules]
    used = {n for e in exprs for n in re.findall(r"(?<![\"\w])gbrowse_aws_\w+", e)}
    assert used and used <= names, used - names
    alerts = {rule["alert"] for rule in rules}
    assert all(f"`{alert}`" in doc for alert in alerts)


def test_the_command_refuses_to_start_with_metrics_and_no_prometheus_client(tmp_path, monkeypatch, capsys):
    from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._cli import EX_CONFIG, balancer_main

    conf = tmp_path / "aws_balancer.conf"
    conf.write_text("[LOAD TABLE]\n0 0 1\n[MASTER]\nmetrics_listen = 127.0.0.1:9465\n[SLAVE]\n", encoding="utf-8")
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    assert balancer_main(["--conf", str(conf)]) == EX_CONFIG
    err = capsys.readouterr().err
    assert err == (
        "gbrowse_aws_balancer: metrics_listen is set but prometheus_client is not installed "
        "(pip install prometheus_client, or leave metrics_listen empty)\n"
    )


@pytest.mark.parametrize(
    "what, reason, label",
    [
        ("terminated", "scale-in (wanted 0-0, 2 counted)", "scale-in"),
        ("terminated", "drained (drain_time over)", "scale-in"),
        ("terminated", "not ready within ready_timeout (5 min): replaced", "not ready"),
        ("terminated", "old data: replaced by a slave with the new data", "refresh"),
        ("terminated", "spot interruption warning from EC2", "interruption"),
        ("terminated", "rebalance recommendation from EC2: replaced", "interruption"),
        ("terminated", "shutdown", "shutdown"),
        ("vanished", "reclaimed by EC2 (spot interruption, Server.SpotInstanceTermination); now terminated", "reclaimed"),
        ("vanished", "no longer described by EC2 (reclaimed, or terminated outside the balancer)", "vanished"),
        ("vanished", "stopped, not by the balancer", "vanished"),
        ("left", "reclaimed by EC2 (spot interruption, Server.SpotInstanceShutdown); now stopped", "reclaimed"),
        ("left", "vanished: shutting-down, not by the balancer", "vanished"),
        ("left", "scale-in", None),  # terminated later, counted then
        ("left", "stopped answering", None),
        ("joined", "answered the readiness check", None),
        ("launched", "wanted 2-3, 0 counted", None),
    ],
)
def test_each_slave_event_that_is_a_slave_going_has_one_reason(what, reason, label):
    from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._events import SlaveEvent
    from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._metrics import termination_reason

    assert termination_reason(SlaveEvent("i-1", None, what, reason)) == label
    assert label is None or label in REASONS
