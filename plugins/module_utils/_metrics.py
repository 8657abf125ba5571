# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The balancer's Prometheus metrics (opt-in: ``[MASTER] metrics_listen = HOST:PORT``).

The daemon calls a :class:`Metrics` at a few points (after each poll, each
failed status read, each failed poll, at shutdown); :class:`NoMetrics` is the
default and does nothing, so a balancer without ``metrics_listen`` never
imports prometheus_client (it is not even needed on the master then).

The gauges are read from each poll's report (:meth:`Metrics.poll`); launches
and terminations are counted from the slave events the daemon logs
(:meth:`Metrics.event`, ``_events.py``), so a metric never disagrees with
the log line about why a slave went; EC2 calls are counted by a botocore
event hook on the facade's client (one count per API call, after botocore's
retries, labelled with the final error code or ``OK``). The
registry is private: no process or platform collectors, only ours, so a
scrape costs the daemon a few hundred microseconds. docs/metrics.md lists
every metric.
"""

from __future__ import annotations

import math
import time
import typing as t

from ansible_collections.gmod.gbrowse_aws.plugins.module_utils import _events as ev

#: What :meth:`Metrics.poll` reads: the daemon's ``_daemon.PollReport`` (not imported:
#: the daemon imports this module, and the conf reader its parse_listen).
PollReport = t.Any

#: Why slaves went (the ``reason`` label). The balancer's own terminations: ``scale-in``
#: (above the band's max; a ready one after its drain), ``not ready`` (not ready within
#: ready_timeout, replaced), ``refresh`` (old data, replaced after a sync), ``interruption``
#: (EC2 warned of a spot interruption or recommended a rebalance: replaced first),
#: ``shutdown`` (SIGTERM with on_exit = terminate). Behind its back: ``reclaimed`` (EC2
#: says the spot market took it), ``vanished`` (gone or going, not by the balancer).
REASONS = ("scale-in", "not ready", "refresh", "interruption", "shutdown", "reclaimed", "vanished")

#: The slave states of the report's counts (``going``: on its way out, still described).
STATES = ("pending", "booting", "ready", "going")

#: Poll durations: a steady poll is tens of milliseconds, a launch one to a few seconds.
POLL_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def termination_reason(event: ev.SlaveEvent) -> str | None:
    """The ``reason`` label of a slave event that is a slave going (None: it is not)."""
    if event.what == ev.TERMINATED:
        for prefix, reason in (
            ("shutdown", "shutdown"),
            ("not ready", "not ready"),
            ("old data", "refresh"),
            ("spot interruption", "interruption"),
            ("rebalance", "interruption"),
        ):
            if event.reason.startswith(prefix):
                return reason
        return "scale-in"  # scale-in, or a drain (a scaled-in ready slave) that ended
    # A slave that went behind our back: one event each, VANISHED, or LEFT when it was in the farm.
    if event.what in (ev.VANISHED, ev.LEFT) and event.reason.startswith("reclaimed"):
        return "reclaimed"
    if event.what == ev.VANISHED or (event.what == ev.LEFT and event.reason.startswith("vanished")):
        return "vanished"
    return None


class MetricsError(Exception):
    """Metrics were asked for and cannot be served; the message is one line for the operator."""


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[IPV6]:PORT`` -> (host, port); ValueError (one line) when it is not one.

    The host is an IP address or a host name; the port 1 to 65535. Any host is
    accepted: listening beyond localhost is the admin's choice (docs/metrics.md).
    """
    host, sep, port = text.rpartition(":")
    if any(c.isspace() or c in "/@" for c in host):
        raise ValueError(f"{text!r}: {host!r} is not a host name or an IP address")
    if not sep or not host:
        raise ValueError(f"{text!r} is not HOST:PORT (like 127.0.0.1:9465)")
    if host.startswith("["):
        if not host.endswith("]") or len(host) < 3:
            raise ValueError(f"{text!r} is not HOST:PORT (an IPv6 address goes in brackets: [::1]:9465)")
        host = host[1:-1]
        if ":" not in host:
            raise ValueError(f"{text!r}: only an IPv6 address goes in brackets")
    elif ":" in host:
        raise ValueError(f"{text!r}: put an IPv6 address in brackets, like [::1]:9465")
    if not host or any(c in "[]" for c in host):
        raise ValueError(f"{text!r}: {host!r} is not a host name or an IP address")
    if not port.isascii() or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"{text!r}: the port must be a number from 1 to 65535")
    return host, int(port)


class Metrics:
    """What the daemon tells its metrics. This base ignores everything (metrics are off)."""

    def watch_ec2(self, client: t.Any) -> None:
        """Count the API calls of this boto3 EC2 client from now on."""

    def poll(self, report: PollReport, *, seconds: float, spot_bid: float = 0.0) -> None:
        """A poll ended after ``seconds``; each running slave costs at most ``spot_bid`` an hour."""

    def event(self, event: ev.SlaveEvent) -> None:
        """Something happened to a slave (launched, terminated, vanished, joined or left the farm)."""

    def status_failed(self) -> None:
        """Apache's server-status could not be read (at a poll or between polls)."""

    def poll_failed(self) -> None:
        """A poll failed on an EC2 error (nothing was changed)."""

    def close(self) -> None:
        """Stop serving."""


NoMetrics = Metrics  # the name the daemon's default reads as


def require_prometheus_client() -> None:
    """MetricsError (one line) when prometheus_client cannot be imported: checked before the daemon starts."""
    try:
        import prometheus_client  # noqa: F401 pylint: disable=unused-import
    except ImportError:
        raise MetricsError(
            "metrics_listen is set but prometheus_client is not installed "
            "(pip install prometheus_client, or leave metrics_listen empty)"
        ) from None


class PrometheusMetrics(Metrics):
    """The metrics in a private registry, served at ``http://HOST:PORT/metrics`` when started.

    Raises MetricsError when prometheus_client is missing.
    """

    def __init__(self, clock: t.Callable[[], float] = time.time) -> None:
        require_prometheus_client()
        # Imported here: only a balancer with metrics_listen needs prometheus_client.
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

        disable_created_metrics()  # no *_created series: half the scrape, and nothing a dashboard reads
        self.clock = clock
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        p = "gbrowse_aws_"
        self.load = Gauge(p + "load", "The load the band was chosen from (load_signal; NaN when unknown)", registry=r)
        self.band_min = Gauge(p + "band_min_slaves", "The wanted band's min (slaves)", registry=r)
        self.band_max = Gauge(p + "band_max_slaves", "The wanted band's max (slaves)", registry=r)
        self.slaves = Gauge(p + "slaves", "Slaves by state as the last poll counted them", ["state"], registry=r)
        self.spend = Gauge(
            p + "spend_upper_bound_dollars_per_hour",
            "spot_bid times the slaves EC2 describes as running: the most they can cost per hour",
            registry=r,
        )
        self.holding = Gauge(p + "holding", "1 while the render farm cannot be published (fleet held)", registry=r)
        self.last_poll = Gauge(p + "last_poll_timestamp_seconds", "When the last poll ended (Unix time)", registry=r)
        self.launched = Counter(p + "slaves_launched", "Slaves launched (instances CreateFleet returned)", registry=r)
        self.terminated = Counter(p + "slaves_terminated", "Slaves terminated, by reason", ["reason"], registry=r)
        self.ec2_calls = Counter(
            p + "ec2_calls",
            "EC2 API calls, by action and outcome (OK or the error code)",
            ["action", "code"],
            registry=r,
        )
        self.status_failures = Counter(
            p + "status_read_failures", "Apache server-status reads that failed (the fleet is held)", registry=r
        )
        self.poll_failures = Counter(p + "poll_failures", "Polls that failed on an EC2 error", registry=r)
        self.poll_seconds = Histogram(
            p + "poll_duration_seconds", "How long each poll took", buckets=POLL_BUCKETS, registry=r
        )
        for state in STATES:
            self.slaves.labels(state)
        for reason in REASONS:
            self.terminated.labels(reason)
        self.load.set(math.nan)
        self._server: t.Any = None

    # -- serving -------------------------------------------------------------

    def serve(self, listen: str) -> None:
        """Serve /metrics on ``listen`` (HOST:PORT) from a daemon thread; MetricsError when it cannot bind."""
        from prometheus_client import start_http_server

        host, port = parse_listen(listen)
        try:
            self._server, dummy = start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:
            raise MetricsError(f"metrics_listen {listen}: cannot listen: {exc.strerror or exc}") from None

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # -- what the daemon tells ---------------------------------------------

    def watch_ec2(self, client: t.Any) -> None:
        client.meta.events.register("after-call.ec2", self._ec2_call)
        client.meta.events.register("after-call-error.ec2", self._ec2_call_error)

    def _ec2_call(self, model: t.Any = None, parsed: t.Any = None, **kwargs: t.Any) -> None:
        error = parsed.get("Error") if isinstance(parsed, dict) else None
        code = str(error.get("Code") or "Unknown") if isinstance(error, dict) and error else "OK"
        self.ec2_calls.labels(getattr(model, "name", "?"), code).inc()

    def _ec2_call_error(self, event_name: str = "", exception: BaseException | None = None, **kwargs: t.Any) -> None:
        # No answer at all (connection refused, timeout) after botocore's retries.
        self.ec2_calls.labels(event_name.rsplit(".", 1)[-1], type(exception).__name__).inc()

    def poll(self, report: PollReport, *, seconds: float, spot_bid: float = 0.0) -> None:
        self.poll_seconds.observe(seconds)
        self.load.set(math.nan if report.load is None else report.load)
        self.band_min.set(report.band.min)
        self.band_max.set(report.band.max)
        for state in STATES:
            self.slaves.labels(state).set(report.counts.get(state, 0))
        self.holding.set(1 if report.publish_error else 0)
        running = sum(1 for i in report.fleet if i.get("state") == "running")
        self.spend.set(round(running * spot_bid, 6))
        self.last_poll.set(self.clock())

    def event(self, event: ev.SlaveEvent) -> None:
        if event.what == ev.LAUNCHED:
            self.launched.inc()
            return
        reason = termination_reason(event)
        if reason is not None:
            self.terminated.labels(reason).inc()

    def status_failed(self) -> None:
        self.status_failures.inc()

    def poll_failed(self) -> None:
        self.poll_failures.inc()


def start_metrics(listen: str | None) -> Metrics:
    """The daemon's metrics: :class:`NoMetrics` without ``listen``, else served on it (MetricsError if it cannot)."""
    if not listen:
        return NoMetrics()
    metrics = PrometheusMetrics()
    metrics.serve(listen)
    return metrics
