# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import atexit
import difflib
import os
import pathlib
import random
import re
import shutil
import stat
import subprocess
import sys
import tempfile

import pytest

from ansible_collections.gmod.gbrowse_aws.plugins.module_utils import _conf
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._conf import (
    START_ONLY,
    BalancerConf,
    ConfError,
    Edit,
    MasterConf,
    SlaveConf,
    apply_edits,
    conf_keys,
    default_balancer_id,
    load_conf,
    parse_conf,
    start_only_changes,
    summary,
    update_conf,
)
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._decision import LoadRow

FIXTURES = pathlib.Path(__file__).parent / "fixtures"
SEED = FIXTURES / "seed.conf"
DEBIAN = FIXTURES / "debian.conf"
# Stored as plain UTF-8 with LF (ansible-test sanity insists); the odd bytes are made here.
_GENERATED = pathlib.Path(tempfile.mkdtemp(prefix="gbrowse-conf-fixtures-"))
atexit.register(shutil.rmtree, _GENERATED, True)
CRLF_TABS = _GENERATED / "crlf_tabs.conf"  # UTF-8 BOM, CRLF, tabs, no final newline
CRLF_TABS.write_bytes(b"\xef\xbb\xbf" + (FIXTURES / "crlf_tabs.conf").read_text(encoding="utf-8").rstrip("\n").replace("\n", "\r\n").encode())
BROKEN = FIXTURES / "broken.conf"
LATIN1 = _GENERATED / "latin1.conf"  # not UTF-8
LATIN1.write_bytes((FIXTURES / "latin1.conf").read_text(encoding="utf-8").encode("latin-1"))
P = "/etc/gbrowse2/aws_balancer.conf"

SEED_TABLE = (
    (0.1, 0, 1, 3),
    (0.5, 0, 2, 4),
    (1.0, 1, 3, 5),
    (2.0, 2, 4, 6),
    (5.0, 3, 6, 7),
    (6.0, 4, 6, 8),
    (7.0, 5, 7, 9),
    (10.0, 6, 8, 10),
    (15.0, 8, 8, 11),
)
MINIMAL = "[LOAD TABLE]\n1 0 1\n[SLAVE]\n"
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")


def rows(conf: BalancerConf) -> tuple[tuple[float, int, int, int], ...]:
    return tuple((r.threshold, r.min, r.max, r.line) for r in conf.table)


def errors_of(text: str) -> list[str]:
    with pytest.raises(ConfError) as caught:
        parse_conf(text, P)
    assert str(caught.value) == "\n".join(caught.value.errors)
    return caught.value.errors


def changed_lines(before: str, after: str) -> list[str]:
    return [
        line
        for line in difflib.unified_diff(before.splitlines(True), after.splitlines(True), n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]


# ---------------------------------------------------------------------------
# Reading the files people have


@pytest.mark.parametrize("path, instance_type", [(SEED, "m1.large"), (DEBIAN, "m1.medium")])
def test_shipped_confs_load_unchanged(path, instance_type):
    conf = load_conf(str(path))
    assert conf.path == str(path)
    assert rows(conf) == SEED_TABLE
    assert conf.master == MasterConf(poll_interval=0.5, server_status_url="http://localhost/server-status")
    assert conf.master == MasterConf()  # everything in the shipped [MASTER] is the default
    assert conf.slave == SlaveConf(
        instance_types=(instance_type,),
        spot_bid=0.10,
        ports=(8101,),
        region="us-west-2",
        image_id="GBrowse-2.54",
        data_snapshots=(),
        availability_zone=None,
        subnet=None,
        security_group=None,
    )


def test_debian_conf_differs_from_seed_only_in_instance_type():
    diff = changed_lines(SEED.read_text(), DEBIAN.read_text())
    assert diff == [
        "-instance_type     = m1.large       # pretty nice performance, might also try medium\n",
        "+instance_type     = m1.medium      # pretty nice performance, might also try medium\n",
        "+\n",
    ]


def test_crlf_tabs_bom_lowercase_sections_and_no_final_newline():
    raw = CRLF_TABS.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw and b"\t" in raw and not raw.endswith(b"\n")
    conf = load_conf(str(CRLF_TABS))
    assert rows(conf) == ((0.1, 0, 1, 4), (1.0, 1, 3, 5), (5.0, 3, 6, 6))
    assert conf.master == MasterConf(poll_interval=0.25, server_status_url="https://127.0.0.1:8080/server-status?auto")
    assert conf.slave == SlaveConf(
        instance_types=("m5.large", "c5.large"), spot_bid=0.05, ports=(8101, 8102), region="eu-west-1"
    )


def test_defaults():
    conf = parse_conf(MINIMAL, P)
    assert conf.table == (LoadRow(1.0, 0, 1, 2),)
    assert conf.master == MasterConf()
    assert conf.slave == SlaveConf()
    assert (conf.master.poll_interval, conf.master.server_status_url) == (0.5, "http://localhost/server-status")
    assert (conf.slave.instance_types, conf.slave.spot_bid, conf.slave.ports) == (("m1.large",), 0.08, (8101,))
    assert conf.master.renderfarm_conf is None  # GBrowse's own: see test_gbrowse_layout.py
    assert conf.resolved_renderfarm_conf("/etc/gbrowse") == "/etc/gbrowse/renderfarm.conf"
    assert conf.master.reload_command == "apache2ctl graceful"
    assert (conf.master.on_exit, conf.master.load_signal, conf.slave.address) == ("terminate", "rate", "auto")
    assert (conf.master.scale_in_delay, conf.master.max_launch_per_poll, conf.master.status_timeout) == (0.0, None, 5.0)
    assert (conf.master.scale_in_window, conf.master.load_margin) == (10.0, 1.0)
    assert conf.slave.ready_timeout == 5.0
    assert conf.slave.ready_misses == 3
    assert conf.slave.refresh_batch == 1


@pytest.mark.parametrize(
    "header",
    [
        "[LOAD TABLE]",
        "[load table]",
        "[Load Table]",
        "[ load   table ]",
        "  [LOAD TABLE]  # the table",
        "[LOAD\tTABLE]",
    ],
)
def test_section_names_any_case_and_spacing(header):
    conf = parse_conf(f"{header}\n0.5 0 1\n[slave]\nspot_bid = 0.2\n[master]\n", P)
    assert conf.table == (LoadRow(0.5, 0, 1, 2),)
    assert conf.slave.spot_bid == 0.2


@pytest.mark.parametrize(
    "line, field, value",
    [
        ("spot_bid = 0.10 # max", "spot_bid", 0.10),
        ("spot_bid=0.3", "spot_bid", 0.3),
        ("spot_bid\t=\t0.4\t#\tcomment", "spot_bid", 0.4),
        ("   spot_bid = 0.5", "spot_bid", 0.5),
        ("image_id = my#image", "image_id", "my#image"),  # '#' without whitespace before it is not a comment
        ("image_id = GBrowse 2.56 (Debian)  # a name to look up", "image_id", "GBrowse 2.56 (Debian)"),
        ("subnet =                # optional", "subnet", None),
        ("subnet =", "subnet", None),
        ("ports = 8101 8102\t8103", "ports", (8101, 8102, 8103)),
        (
            "instance_type = m5.large  c6g.xlarge u-6tb1.metal",
            "instance_types",
            ("m5.large", "c6g.xlarge", "u-6tb1.metal"),
        ),
        ("data_snapshots = snap-12345 snap-abcdef", "data_snapshots", ("snap-12345", "snap-abcdef")),
        ("security_group = GBrowse slaves", "security_group", "GBrowse slaves"),
        ("security_group = sg-0123abcd", "security_group", "sg-0123abcd"),
        ("availability_zone = us-west-2b", "availability_zone", "us-west-2b"),
        ("region = us-gov-west-1", "region", "us-gov-west-1"),
        ("subnet = subnet-0a1b2c", "subnet", "subnet-0a1b2c"),
        ("address = Private", "address", "private"),
        ("ready_timeout = 2.5", "ready_timeout", 2.5),
        ("ready_misses = 1", "ready_misses", 1),
        ("ready_misses = 20", "ready_misses", 20),
        ("refresh_batch = 0", "refresh_batch", 0),
        ("refresh_batch = 3", "refresh_batch", 3),
        ("spot_bid = 1e-1", "spot_bid", 0.1),
        ("on_demand_price = 0.096", "on_demand_price", 0.096),
    ],
)
def test_slave_values(line, field, value):
    conf = parse_conf(f"[LOAD TABLE]\n1 0 1\n[SLAVE]\n{line}\n", P)
    assert getattr(conf.slave, field) == value


@pytest.mark.parametrize(
    "line, field, value",
    [
        ("external_ip = 203.0.113.7", "external_ip", "203.0.113.7"),
        ("external_ip = 2001:db8::1", "external_ip", "2001:db8::1"),
        ("poll_interval = .25", "poll_interval", 0.25),
        (
            "server_status_url = https://[::1]:8443/server-status?auto",
            "server_status_url",
            "https://[::1]:8443/server-status?auto",
        ),
        ("balancer_id = www.example-1_a", "balancer_id", "www.example-1_a"),
        ("renderfarm_conf = /opt/gbrowse/etc/renderfarm.conf", "renderfarm_conf", "/opt/gbrowse/etc/renderfarm.conf"),
        ("reload_command = systemctl reload apache2", "reload_command", "systemctl reload apache2"),
        ("reload_command =", "reload_command", ""),  # no reload: CGI GBrowse re-reads renderfarm.conf
        ("reload_command =   # CGI only", "reload_command", ""),
        ("renderfarm_conf =", "renderfarm_conf", None),  # an empty value of any other key is unset
        ("on_exit = keep", "on_exit", "keep"),
        ("load_signal = busy_workers", "load_signal", "busy_workers"),
        ("load_signal = REQPERSEC", "load_signal", "reqpersec"),
        ("scale_in_delay = 0", "scale_in_delay", 0.0),
        ("scale_in_delay = 10", "scale_in_delay", 10.0),
        ("scale_in_window = 0", "scale_in_window", 0.0),
        ("scale_in_window = 20", "scale_in_window", 20.0),
        ("load_margin = 0", "load_margin", 0.0),
        ("load_margin = 1.5", "load_margin", 1.5),
        ("max_launch_per_poll = 3", "max_launch_per_poll", 3),
        ("status_timeout = 0.5", "status_timeout", 0.5),
        ("max_hourly_spend = 2.5", "max_hourly_spend", 2.5),
        ("max_hourly_spend =", "max_hourly_spend", None),  # no cap
        ("on_demand_fallback = 0", "on_demand_fallback", 0),
    ],
)
def test_master_values(line, field, value):
    conf = parse_conf(f"[MASTER]\n{line}\n[LOAD TABLE]\n1 0 1\n[SLAVE]\n", P)
    assert getattr(conf.master, field) == value


def test_table_rows_keep_their_lines_and_zero_threshold():
    conf = parse_conf("[LOAD TABLE]\n# c\n\n0 0 0\n 0.5\t0 1   # comment\n+2 1 +3\n[SLAVE]\n", P)
    assert rows(conf) == ((0.0, 0, 0, 4), (0.5, 0, 1, 5), (2.0, 1, 3, 6))


# ---------------------------------------------------------------------------
# Validation: every problem, with its line

HEAD = "[LOAD TABLE]\n1 0 1\n[MASTER]\n"  # a key line after this is line 4
SLAVE_HEAD = "[LOAD TABLE]\n1 0 1\n[SLAVE]\n"


@pytest.mark.parametrize(
    "text, expected",
    [
        # the load table
        (
            "[LOAD TABLE]\n0.1 0\n[SLAVE]\n",
            ["2: load table row needs 3 fields (requests/sec min max), found 2: '0.1 0'"],
        ),
        (
            "[LOAD TABLE]\n0.1 0 1 2\n[SLAVE]\n",
            ["2: load table row needs 3 fields (requests/sec min max), found 4: '0.1 0 1 2'"],
        ),
        (
            "[LOAD TABLE]\nmin = 1\n[SLAVE]\n",
            ["2: load table rows are 'requests/sec min max', not settings: 'min = 1'"],
        ),
        ("[LOAD TABLE]\nlots 0 1\n[SLAVE]\n", ["2: load table threshold: 'lots' is not a number"]),
        ("[LOAD TABLE]\ninf 0 1\n[SLAVE]\n", ["2: load table threshold: 'inf' is not a number"]),
        ("[LOAD TABLE]\nnan 0 1\n[SLAVE]\n", ["2: load table threshold: 'nan' is not a number"]),
        ("[LOAD TABLE]\n1e999 0 1\n[SLAVE]\n", ["2: load table threshold: '1e999' is too large"]),
        ("[LOAD TABLE]\n-0.5 0 1\n[SLAVE]\n", ["2: load table threshold: '-0.5' must be from 0 to 1e+09 requests/sec"]),
        ("[LOAD TABLE]\n0.5 -1 1\n[SLAVE]\n", ["2: load table min: '-1' must be from 0 to 1000"]),
        ("[LOAD TABLE]\n0.5 0 1.5\n[SLAVE]\n", ["2: load table max: '1.5' is not a whole number"]),
        ("[LOAD TABLE]\n0.5 zero 1\n[SLAVE]\n", ["2: load table min: 'zero' is not a number"]),
        (
            "[LOAD TABLE]\n0.5 0 " + "9" * 30 + "\n[SLAVE]\n",
            ["2: load table max: '" + "9" * 30 + "' must be from 0 to 1000"],
        ),
        ("[LOAD TABLE]\n0.5 3 2\n[SLAVE]\n", ["2: load table min 3 is greater than max 2"]),
        (
            "[LOAD TABLE]\n1.0 0 1\n1.0 1 2\n[SLAVE]\n",
            ["3: load table threshold 1.0 is not greater than 1.0 on line 2; thresholds must be strictly ascending"],
        ),
        (
            "[LOAD TABLE]\n2 0 1\n5 1 2\n3 1 2\n[SLAVE]\n",
            ["4: load table threshold 3 is not greater than 5.0 on line 3; thresholds must be strictly ascending"],
        ),
        (
            "[LOAD TABLE]\n# only a comment\n\n[SLAVE]\n",
            ["1: [LOAD TABLE] has no rows (expected 'requests/sec min max' lines)"],
        ),
        # missing and unknown sections
        ("[SLAVE]\n", [": missing [LOAD TABLE] section"]),
        ("[LOAD TABLE]\n1 0 1\n[MASTER]\n", [": missing [SLAVE] section"]),
        ("", [": missing [LOAD TABLE] section", ": missing [SLAVE] section"]),
        (
            MINIMAL + "[SLAVES]\nfoo = bar\n",
            ["4: unknown section [SLAVES]; did you mean [SLAVE]?; known sections: [LOAD TABLE], [MASTER], [SLAVE]"],
        ),
        (
            "[LOADTABLE]\n1 0 1\n[SLAVE]\n",
            [
                "1: unknown section [LOADTABLE]; did you mean [LOAD TABLE]?; known sections: [LOAD TABLE], [MASTER], [SLAVE]",
                ": missing [LOAD TABLE] section",
            ],
        ),
        (MINIMAL + "[GENERAL]\n", ["4: unknown section [GENERAL]; known sections: [LOAD TABLE], [MASTER], [SLAVE]"]),
        (MINIMAL + "[]\n", ["4: empty section name []"]),
        (MINIMAL + "[MASTER\n", ["4: malformed section header '[MASTER' (missing ']')"]),
        (MINIMAL + "[MASTER] poll_interval = 1\n", ["4: unexpected text 'poll_interval = 1' after [MASTER]"]),
        (MINIMAL + "[SLAVE]\n", ["4: duplicate section [SLAVE] (first on line 3)"]),
        (
            "poll_interval = 0.5\n" + MINIMAL,
            ["1: text before the first section; expected [LOAD TABLE], [MASTER] or [SLAVE]"],
        ),
        (
            "# comment first is fine\n\nstray\nmore stray\n" + MINIMAL,
            ["3: text before the first section; expected [LOAD TABLE], [MASTER] or [SLAVE]"],
        ),
        # keys
        (SLAVE_HEAD + "spot_bif = 0.1\n", ["4: unknown key 'spot_bif' in [SLAVE]; did you mean 'spot_bid'?"]),
        (
            SLAVE_HEAD + "Spot_Bid = 0.1\n",
            ["4: unknown key 'Spot_Bid' in [SLAVE]; did you mean 'spot_bid'? (keys are lower case)"],
        ),
        (SLAVE_HEAD + "spot bid = 0.1\n", ["4: unknown key 'spot bid' in [SLAVE]; did you mean 'spot_bid'?"]),
        (SLAVE_HEAD + "flavour = vanilla\n", ["4: unknown key 'flavour' in [SLAVE]"]),
        (
            SLAVE_HEAD + "poll_interval = 1\n",
            ["4: unknown key 'poll_interval' in [SLAVE]; poll_interval belongs in [MASTER]"],
        ),
        (
            HEAD + "image_id = ami-1\n" + "[SLAVE]\n",
            ["4: unknown key 'image_id' in [MASTER]; image_id belongs in [SLAVE]"],
        ),
        (
            SLAVE_HEAD + "spot_bid = 0.1\nports = 1\nspot_bid = 0.2\n",
            ["6: duplicate key spot_bid (first set on line 4)"],
        ),
        (SLAVE_HEAD + "subnet =\nsubnet = subnet-1\n", ["5: duplicate key subnet (first set on line 4)"]),
        (SLAVE_HEAD + "spot_bid 0.1\n", ["4: spot_bid: missing '=' (expected 'spot_bid = VALUE')"]),
        (SLAVE_HEAD + "what is this\n", ["4: missing '=' in 'what is this' (expected 'key = value')"]),
        (SLAVE_HEAD + "= 0.1\n", ["4: missing key before '=' in '= 0.1'"]),
        # numbers
        (SLAVE_HEAD + "spot_bid = cheap\n", ["4: spot_bid: 'cheap' is not a number"]),
        (SLAVE_HEAD + "spot_bid = 0\n", ["4: spot_bid: '0' must be from 0.001 to 1000 USD/hour"]),
        (SLAVE_HEAD + "spot_bid = $0.10\n", ["4: spot_bid: '$0.10' is not a number"]),
        (SLAVE_HEAD + "ready_timeout = -1\n", ["4: ready_timeout: '-1' must be from 0.01 to 1440 minutes"]),
        (SLAVE_HEAD + "ready_misses = 0\n", ["4: ready_misses: '0' must be from 1 to 20"]),
        (SLAVE_HEAD + "ready_misses = 21\n", ["4: ready_misses: '21' must be from 1 to 20"]),
        (SLAVE_HEAD + "ready_misses = 2.5\n", ["4: ready_misses: '2.5' is not a whole number"]),
        (SLAVE_HEAD + "refresh_batch = -1\n", ["4: refresh_batch: '-1' must be from 0 to 1000"]),
        (SLAVE_HEAD + "refresh_batch = 1.5\n", ["4: refresh_batch: '1.5' is not a whole number"]),
        (HEAD + "poll_interval = 0\n[SLAVE]\n", ["4: poll_interval: '0' must be from 0.01 to 1440 minutes"]),
        (HEAD + "poll_interval = 30s\n[SLAVE]\n", ["4: poll_interval: '30s' is not a number"]),
        (HEAD + "status_timeout = -2\n[SLAVE]\n", ["4: status_timeout: '-2' must be from 0.1 to 300 seconds"]),
        (HEAD + "scale_in_delay = -1\n[SLAVE]\n", ["4: scale_in_delay: '-1' must be from 0 to 1440 minutes"]),
        (HEAD + "scale_in_window = 1441\n[SLAVE]\n", ["4: scale_in_window: '1441' must be from 0 to 1440 minutes"]),
        (
            HEAD + "load_margin = -0.5\n[SLAVE]\n",
            ["4: load_margin: '-0.5' must be from 0 to 10 standard deviations"],
        ),
        (HEAD + "load_margin = 1sd\n[SLAVE]\n", ["4: load_margin: '1sd' is not a number"]),
        (HEAD + "max_launch_per_poll = 0\n[SLAVE]\n", ["4: max_launch_per_poll: '0' must be from 1 to 1000"]),
        (HEAD + "max_hourly_spend = 0\n[SLAVE]\n", ["4: max_hourly_spend: '0' must be from 0.001 to 100000 USD/hour"]),
        (HEAD + "max_hourly_spend = $5\n[SLAVE]\n", ["4: max_hourly_spend: '$5' is not a number"]),
        (HEAD + "on_demand_fallback = -1\n[SLAVE]\n", ["4: on_demand_fallback: '-1' must be from 0 to 1000 polls"]),
        (HEAD + "on_demand_fallback = 1.5\n[SLAVE]\n", ["4: on_demand_fallback: '1.5' is not a whole number"]),
        (
            HEAD + "on_demand_fallback = 3\n[SLAVE]\n",
            ["4: on_demand_fallback: needs [SLAVE] on_demand_price (what an on-demand slave may cost, USD/hour)"],
        ),
        (SLAVE_HEAD + "on_demand_price = 0\n", ["4: on_demand_price: '0' must be from 0.001 to 1000 USD/hour"]),
        (HEAD + "max_launch_per_poll = 1.5\n[SLAVE]\n", ["4: max_launch_per_poll: '1.5' is not a whole number"]),
        # ports
        (SLAVE_HEAD + "ports = 0\n", ["4: ports: '0' is not a port number (1-65535)"]),
        (SLAVE_HEAD + "ports = 8101 65536\n", ["4: ports: '65536' is not a port number (1-65535)"]),
        (SLAVE_HEAD + "ports = 8101,8102\n", ["4: ports: '8101,8102' is not a port number (1-65535)"]),
        (SLAVE_HEAD + "ports = 8101 8101\n", ["4: ports: '8101' is listed twice"]),
        # URLs
        (
            HEAD + "server_status_url = ftp://localhost/server-status\n[SLAVE]\n",
            ["4: server_status_url: 'ftp://localhost/server-status' is not an http:// or https:// URL with a host"],
        ),
        (
            HEAD + "server_status_url = localhost/server-status\n[SLAVE]\n",
            ["4: server_status_url: 'localhost/server-status' is not an http:// or https:// URL with a host"],
        ),
        (
            HEAD + "server_status_url = http:///server-status\n[SLAVE]\n",
            ["4: server_status_url: 'http:///server-status' is not an http:// or https:// URL with a host"],
        ),
        (
            HEAD + "server_status_url = http://localhost:99999/\n[SLAVE]\n",
            ["4: server_status_url: 'http://localhost:99999/' is not an http:// or https:// URL with a host"],
        ),
        (
            HEAD + "server_status_url = http://[::1/\n[SLAVE]\n",
            ["4: server_status_url: 'http://[::1/' is not an http:// or https:// URL with a host"],
        ),
        # enums
        (HEAD + "on_exit = stop\n[SLAVE]\n", ["4: on_exit: 'stop' is not one of terminate, keep"]),
        (
            HEAD + "on_exit = terminat\n[SLAVE]\n",
            ["4: on_exit: 'terminat' is not one of terminate, keep; did you mean 'terminate'?"],
        ),
        (
            HEAD + "load_signal = busy-workers\n[SLAVE]\n",
            [
                "4: load_signal: 'busy-workers' is not one of rate, reqpersec, busy_workers; did you mean 'busy_workers'?"
            ],
        ),
        (SLAVE_HEAD + "address = elastic\n", ["4: address: 'elastic' is not one of auto, private, public"]),
        # other values
        (HEAD + "external_ip = my.host.example\n[SLAVE]\n", ["4: external_ip: 'my.host.example' is not an IP address"]),
        (HEAD + "external_ip = 10.0.0.256\n[SLAVE]\n", ["4: external_ip: '10.0.0.256' is not an IP address"]),
        (
            HEAD + "balancer_id = my balancer\n[SLAVE]\n",
            ["4: balancer_id: 'my balancer' must be 1 to 64 of the characters A-Z a-z 0-9 . _ -"],
        ),
        (
            HEAD + "balancer_id = " + "x" * 65 + "\n[SLAVE]\n",
            ["4: balancer_id: '" + "x" * 65 + "' must be 1 to 64 of the characters A-Z a-z 0-9 . _ -"],
        ),
        (
            HEAD + "renderfarm_conf = renderfarm.conf\n[SLAVE]\n",
            ["4: renderfarm_conf: 'renderfarm.conf' is not an absolute path"],
        ),
        (
            SLAVE_HEAD + "instance_type = M1.LARGE\n",
            ["4: instance_type: 'M1.LARGE' is not an instance type like m5.large"],
        ),
        (
            SLAVE_HEAD + "instance_type = m5.large, c5.large\n",
            ["4: instance_type: 'm5.large,' is not an instance type like m5.large"],
        ),
        (SLAVE_HEAD + "instance_type = m5.large m5.large\n", ["4: instance_type: 'm5.large' is listed twice"]),
        (SLAVE_HEAD + "region = Oregon\n", ["4: region: 'Oregon' is not a region like us-west-2"]),
        (SLAVE_HEAD + "region = us-west-2 us-east-1\n", ["4: region: 'us-west-2 us-east-1' must be a single value"]),
        (
            SLAVE_HEAD + "data_snapshots = snap-12 vol-34\n",
            ["4: data_snapshots: 'vol-34' is not a snapshot id like snap-0123abcd"],
        ),
        (SLAVE_HEAD + "data_snapshots = snap-12 snap-12\n", ["4: data_snapshots: 'snap-12' is listed twice"]),
        (SLAVE_HEAD + "subnet = default\n", ["4: subnet: 'default' is not a subnet id like subnet-0123abcd"]),
        (
            SLAVE_HEAD + "availability_zone = west\n",
            ["4: availability_zone: 'west' is not an availability zone like us-west-2a"],
        ),
        (
            SLAVE_HEAD + "region = us-west-2\navailability_zone = us-east-1a\n",
            ["5: availability_zone: 'us-east-1a' is not in region us-west-2"],
        ),
        (
            SLAVE_HEAD + "security_group = " + "g" * 256 + "\n",
            ["4: security_group: a security group name has at most 255 characters"],
        ),
    ],
)
def test_each_error_names_file_and_line(text, expected):
    # "N: message" is at line N of P; ": message" is about the file as a whole
    assert errors_of(text) == [P + (":" + e if e[0].isdigit() else e) for e in expected]


@pytest.mark.parametrize(
    "zone, region",
    [("us-west-2a", "us-west-2"), ("us-west-2-lax-1a", "us-west-2"), ("eu-central-1c", "eu-central-1")],
)
def test_zone_in_region(zone, region):
    conf = parse_conf(SLAVE_HEAD + f"region = {region}\navailability_zone = {zone}\n", P)
    assert (conf.slave.region, conf.slave.availability_zone) == (region, zone)


def test_all_errors_at_once():
    path = str(BROKEN)
    with pytest.raises(ConfError) as caught:
        load_conf(path)
    assert caught.value.errors == [
        f"{path}:4: load table min 2 is greater than max 1",
        f"{path}:5: load table threshold 0.5 is not greater than 0.5 on line 4; thresholds must be strictly ascending",
        f"{path}:6: load table min: 'x' is not a number",
        f"{path}:9: poll_interval: '0' must be from 0.01 to 1440 minutes",
        f"{path}:10: server_status_url: 'ftp://localhost/server-status' is not an http:// or https:// URL with a host",
        f"{path}:11: on_exit: 'stop' is not one of terminate, keep",
        f"{path}:15: spot_bid: 'cheap' is not a number",
        f"{path}:16: duplicate key spot_bid (first set on line 15)",
        f"{path}:17: ports: '70000' is not a port number (1-65535)",
        f"{path}:18: unknown key 'regoin' in [SLAVE]; did you mean 'region'?",
    ]
    assert str(caught.value) == "\n".join(caught.value.errors)


def test_line_numbers_count_crlf_and_bom():
    text = "\ufeff[LOAD TABLE]\r\n1 0 1\r\n\r\n[SLAVE]\r\nspot_bid = x\r\n"
    assert errors_of(text) == [f"{P}:5: spot_bid: 'x' is not a number"]


def test_conf_error_accepts_one_message():
    error = ConfError("x: broken")
    assert error.errors == ["x: broken"] and str(error) == "x: broken"


@pytest.mark.parametrize(
    "setup, message",
    [
        ("missing", "{p}: no such file"),
        ("directory", "{p}: is a directory, not a file"),
        ("latin1", "{p}: not UTF-8 text (byte 0xe9 on line 25)"),
        ("dangling", "{p}: no such file"),
    ],
)
def test_load_conf_file_problems(tmp_path, setup, message):
    path = tmp_path / "aws_balancer.conf"
    if setup == "directory":
        path.mkdir()
    elif setup == "latin1":
        path.write_bytes(LATIN1.read_bytes())
    elif setup == "dangling":
        path.symlink_to(tmp_path / "gone")
    with pytest.raises(ConfError) as caught:
        load_conf(str(path))
    assert caught.value.errors == [message.format(p=path)]


def test_load_conf_unreadable(tmp_path):
    path = tmp_path / "aws_balancer.conf"
    path.write_text(MINIMAL)
    path.chmod(0)
    if os.geteuid() != 0:
        with pytest.raises(ConfError, match="permission denied"):
            load_conf(str(path))
        return
    # Root reads anything, unless it lacks the capabilities that let it: drop them (util-linux setpriv).
    code = "import sys; from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._conf import load_conf; load_conf(sys.argv[1])"
    out = subprocess.run(
        ["setpriv", "--bounding-set=-dac_override,-dac_read_search", sys.executable, "-c", code, str(path)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert out.returncode != 0 and f"ConfError: {path}: permission denied" in out.stderr, out.stderr


VOCABULARY = [
    "[LOAD TABLE]",
    "[MASTER]",
    "[SLAVE]",
    "[load table]",
    "[",
    "]",
    "[]",
    "[[x]]",
    "#",
    " # c",
    "=",
    "==",
    "= =",
    "0.1 0 1",
    "1 2",
    "x y z",
    "-1 -2 -3",
    "1e999 1 1",
    "nan nan nan",
    "spot_bid = 0.1",
    "spot_bid =",
    "ports = 0 99999",
    "instance_type = m5.large m5.large",
    "region = us-west-2",
    "availability_zone = eu-west-1a",
    "poll_interval = -0",
    "server_status_url = http://[",
    "server_status_url = https://h:0/",
    "external_ip = ::",
    "\t",
    "\r",
    "\x00",
    "\ufeff",
    "\u2028",
    "\x85",
    "key\u00a0= value",
    "snap-1",
    "data_snapshots = snap-1 snap-1",
    "on_exit = KEEP",
    "\u00e9 = \u00e9",
    "9" * 5000,
    "max_launch_per_poll = " + "9" * 5000,
    "subnet = subnet-",
    "balancer_id = .",
    "renderfarm_conf = /",
]


@pytest.mark.parametrize("seed", range(40))
def test_never_a_traceback_on_garbage_lines(seed):
    rng = random.Random(seed)
    text = "\n".join(rng.choice(VOCABULARY) for dummy in range(rng.randint(0, 40)))
    if rng.random() < 0.5:
        text = text.replace("\n", "\r\n")
    try:
        conf = parse_conf(text, P)
    except ConfError as exc:
        assert exc.errors and all(e.startswith(P + ":") for e in exc.errors)
    else:
        assert isinstance(conf, BalancerConf)
    # editing garbage either works or says why, and never breaks
    try:
        apply_edits(text, [Edit("SLAVE", "spot_bid", "0.2"), Edit("MASTER", "on_exit", None)], table=[LoadRow(1, 0, 1)])
    except ConfError as exc:  # pragma: no cover - the edits are valid; garbage text must not make them fail
        pytest.fail(f"apply_edits failed on garbage: {exc}")


@pytest.mark.parametrize("seed", range(40))
def test_never_a_traceback_on_random_bytes(tmp_path, seed):
    rng = random.Random(seed)
    data = bytes(rng.randrange(256) for dummy in range(rng.randint(0, 600)))
    if seed % 3 == 0:  # mostly-valid UTF-8 noise gets further into the parser
        data = data.decode("utf-8", "replace").encode("utf-8")
    path = tmp_path / "aws_balancer.conf"
    path.write_bytes(data)
    try:
        load_conf(str(path))
    except ConfError as exc:
        assert exc.errors and all(e.startswith(str(path)) for e in exc.errors)


# ---------------------------------------------------------------------------
# Balancer id and summary


@pytest.mark.parametrize(
    "hostname, path, prefix",
    [
        ("www.example.org", "/etc/gbrowse2/aws_balancer.conf", "www-"),
        ("gbrowse", "/opt/gbrowse/etc/aws_balancer.conf", "gbrowse-"),
        ("", "/etc/gbrowse2/aws_balancer.conf", "gbrowse-"),
        ("ip-10-0-0-5.ec2.internal", "/etc/gbrowse2/aws_balancer.conf", "ip-10-0-0-5-"),
        ("we!rd host", "/etc/x.conf", "we-rd-host-"),
        ("h" * 100, "/etc/x.conf", "h" * 55 + "-"),
    ],
)
def test_default_balancer_id(hostname, path, prefix):
    found = default_balancer_id(hostname, path)
    assert found.startswith(prefix)
    assert re.fullmatch(r"[A-Za-z0-9._-]{1,64}", found)
    assert re.fullmatch(r"[0-9a-f]{8}", found[len(prefix) :])
    assert found == default_balancer_id(hostname, path)  # stable


def test_default_balancer_id_differs_by_path_and_host():
    ids = {
        default_balancer_id("a", "/etc/gbrowse2/aws_balancer.conf"),
        default_balancer_id("a", "/etc/gbrowse2/other.conf"),
        default_balancer_id("b", "/etc/gbrowse2/aws_balancer.conf"),
    }
    assert len(ids) == 3
    # the hash is of the absolute path
    assert default_balancer_id("a", "/etc/gbrowse2/aws_balancer.conf").endswith(
        "-" + _sha8("/etc/gbrowse2/aws_balancer.conf")
    )


def _sha8(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()[:8]


def test_resolved_balancer_id():
    derived = parse_conf(MINIMAL, P)
    assert derived.resolved_balancer_id("www.example.org") == "www-" + _sha8(P)
    fixed = parse_conf("[MASTER]\nbalancer_id = prod\n" + MINIMAL, P)
    assert fixed.resolved_balancer_id("www.example.org") == "prod"


def test_summary_of_seed():
    conf = load_conf(str(SEED))
    text = summary(conf, "www.example.org")
    assert not text.endswith("\n")  # callers print() it
    lines = text.splitlines()
    assert lines[0] == f"{SEED}: OK"
    assert "       0.1     0     1" in lines and "      15.0     8     8" in lines
    assert "  spot_bid          = 0.1 USD/hour" in lines
    assert "  region            = us-west-2" in lines
    assert "  instance_type     = m1.large  (default)" in lines
    assert "  poll_interval       = 0.5 minutes  (default)" in lines
    assert "  external_ip         = (unset)  (default)" in lines
    assert "  data_snapshots    = (none)  (default)" in lines
    balancer = (
        f"  balancer_id         = www-{_sha8(str(SEED.resolve()))}  (derived from the host name and the conf path)"
    )
    assert balancer in lines
    # every setting is shown once
    for key in (
        "external_ip",
        "poll_interval",
        "server_status_url",
        "balancer_id",
        "renderfarm_conf",
        "reload_command",
        "on_exit",
        "load_signal",
        "scale_in_delay",
        "scale_in_window",
        "load_margin",
        "max_launch_per_poll",
        "status_timeout",
        "instance_type",
        "spot_bid",
        "ports",
        "region",
        "image_id",
        "data_snapshots",
        "availability_zone",
        "subnet",
        "security_group",
        "address",
        "ready_timeout",
        "ready_misses",
        "refresh_batch",
    ):
        assert sum(1 for line in lines if line.startswith(f"  {key} ")) == 1, key


def test_summary_marks_only_defaults():
    conf = parse_conf("[MASTER]\non_exit = keep\nbalancer_id = prod\n" + MINIMAL, P)
    lines = summary(conf, "h").splitlines()
    assert "  on_exit             = keep" in lines
    assert "  balancer_id         = prod" in lines
    assert "  load_signal         = rate  (default)" in lines


# ---------------------------------------------------------------------------
# Editing

SYNC = Edit(
    "SLAVE", "data_snapshots", "snap-1 snap-2", comment="synchronized with local filesystem on Tue Nov 24 10:00:00 2026"
)


def test_sync_edit_changes_only_its_line():
    before = SEED.read_text()
    after = apply_edits(before, [SYNC])
    assert changed_lines(before, after) == [
        "-data_snapshots    =                # EBS snapshot(s) to attach to the slave\n",
        "+data_snapshots    = snap-1 snap-2 # synchronized with local filesystem on Tue Nov 24 10:00:00 2026\n",
    ]
    assert parse_conf(after, P).slave.data_snapshots == ("snap-1", "snap-2")


@pytest.mark.parametrize(
    "edit, old, new",
    [
        # the trailing comment stays, in its column
        (
            Edit("SLAVE", "spot_bid", "0.25"),
            "spot_bid          = 0.10           # the pricing will cost no more than $0.10/hr",
            "spot_bid          = 0.25           # the pricing will cost no more than $0.10/hr",
        ),
        (
            Edit("SLAVE", "subnet", "subnet-0a1b2c3d"),
            "subnet            =                # optional",
            "subnet            = subnet-0a1b2c3d # optional",
        ),
        (
            Edit("SLAVE", "image_id", "ami-0123456789abcdef0"),
            "image_id          = GBrowse-2.54   # AMI of the slave",
            "image_id          = ami-0123456789abcdef0 # AMI of the slave",
        ),
        # a new comment replaces the old one
        (
            Edit("SLAVE", "ports", "8101 8102", comment="two slave processes"),
            "ports             = 8101           # can be several space-delimited port numbers",
            "ports             = 8101 8102 # two slave processes",
        ),
        # an empty comment removes it
        (
            Edit("SLAVE", "region", "us-east-1", comment=""),
            "region            = us-west-2      # needed only when run from a non-AWS computer",
            "region            = us-east-1",
        ),
        # an empty value unsets, keeping the comment in place
        (
            Edit("SLAVE", "image_id", ""),
            "image_id          = GBrowse-2.54   # AMI of the slave",
            "image_id          =                # AMI of the slave",
        ),
        (
            Edit("MASTER", "server_status_url", " http://127.0.0.1/server-status "),
            "server_status_url = http://localhost/server-status    # URL on master that invokes Apache server-status",
            "server_status_url = http://127.0.0.1/server-status    # URL on master that invokes Apache server-status",
        ),
        (
            Edit("master", "external_ip", "203.0.113.9"),
            "external_ip       =                # optional; will figure it out if needed",
            "external_ip       = 203.0.113.9    # optional; will figure it out if needed",
        ),
    ],
)
def test_set_existing_key_in_place(edit, old, new):
    before = SEED.read_text()
    after = apply_edits(before, [edit])
    assert changed_lines(before, after) == ["-" + old + "\n", "+" + new + "\n"]
    parse_conf(after, P)


@pytest.mark.parametrize(
    "line, edit, expected",
    [
        ("spot_bid=0.1", Edit("SLAVE", "spot_bid", "0.2"), "spot_bid=0.2"),
        (
            "spot_bid =\t0.1\t# tab before comment",
            Edit("SLAVE", "spot_bid", "0.25"),
            "spot_bid =\t0.25\t# tab before comment",
        ),
        ("spot_bid = 0.1   ", Edit("SLAVE", "spot_bid", "0.2"), "spot_bid = 0.2"),
        ("spot_bid =", Edit("SLAVE", "spot_bid", "0.2"), "spot_bid = 0.2"),
        ("spot_bid = 0.1 # c", Edit("SLAVE", "spot_bid", "0.2", comment="raised"), "spot_bid = 0.2 # raised"),
        ("  spot_bid = 0.1", Edit("SLAVE", "spot_bid", "0.2"), "  spot_bid = 0.2"),
    ],
)
def test_set_existing_key_spacing(line, edit, expected):
    before = f"[LOAD TABLE]\n1 0 1\n[SLAVE]\n{line}\nports = 8101\n"
    after = apply_edits(before, [edit])
    assert after == f"[LOAD TABLE]\n1 0 1\n[SLAVE]\n{expected}\nports = 8101\n"


def test_add_absent_key_after_last_key_of_its_section_aligned():
    before = SEED.read_text()
    after = apply_edits(
        before, [Edit("MASTER", "status_timeout", "3", comment="seconds"), Edit("SLAVE", "address", "private")]
    )
    assert changed_lines(before, after) == [
        "+status_timeout    = 3 # seconds\n",
        "+address           = private\n",
    ]
    lines = after.splitlines()
    assert (
        lines[
            lines.index(
                "server_status_url = http://localhost/server-status    # URL on master that invokes Apache server-status"
            )
            + 1
        ]
        == "status_timeout    = 3 # seconds"
    )
    assert lines[-1] == "address           = private"
    conf = parse_conf(after, P)
    assert (conf.master.status_timeout, conf.slave.address) == (3.0, "private")


@pytest.mark.parametrize(
    "before, edits, expected",
    [
        # add to a section without keys: right after its header
        (
            "[LOAD TABLE]\n1 0 1\n\n[SLAVE]\n\n# end\n",
            [Edit("SLAVE", "spot_bid", "0.2")],
            "[LOAD TABLE]\n1 0 1\n\n[SLAVE]\nspot_bid = 0.2\n\n# end\n",
        ),
        # absent section: appended, separated by a blank line
        (
            MINIMAL + "spot_bid = 0.2",
            [Edit("MASTER", "poll_interval", "1"), Edit("MASTER", "on_exit", "keep")],
            MINIMAL + "spot_bid = 0.2\n\n[MASTER]\npoll_interval = 1\non_exit = keep",
        ),
        (
            MINIMAL,
            [Edit("MASTER", "poll_interval", "1", comment="minutes")],
            MINIMAL + "\n[MASTER]\npoll_interval = 1 # minutes\n",
        ),
        # removing
        (MINIMAL + "spot_bid = 0.2 # x\nports = 8101\n", [Edit("SLAVE", "spot_bid", None)], MINIMAL + "ports = 8101\n"),
        (MINIMAL + "ports = 8101\n", [Edit("SLAVE", "spot_bid", None)], MINIMAL + "ports = 8101\n"),
        (MINIMAL, [Edit("MASTER", "on_exit", None)], MINIMAL),
        # duplicates collapse into the first
        (
            MINIMAL + "spot_bid = 0.1\nports = 1\nspot_bid = 0.3\n",
            [Edit("SLAVE", "spot_bid", "0.2")],
            MINIMAL + "spot_bid = 0.2\nports = 1\n",
        ),
        # a final line without newline stays without
        (MINIMAL + "spot_bid = 0.1", [Edit("SLAVE", "spot_bid", "0.2")], MINIMAL + "spot_bid = 0.2"),
        (MINIMAL + "spot_bid = 0.1", [Edit("SLAVE", "ports", "8102")], MINIMAL + "spot_bid = 0.1\nports = 8102"),
        # CRLF stays CRLF, also for added lines
        (
            "[LOAD TABLE]\r\n1 0 1\r\n[SLAVE]\r\nspot_bid = 0.1\r\n",
            [Edit("SLAVE", "spot_bid", "0.2"), Edit("SLAVE", "ports", "1")],
            "[LOAD TABLE]\r\n1 0 1\r\n[SLAVE]\r\nspot_bid = 0.2\r\nports = 1\r\n",
        ),
        (
            "[LOAD TABLE]\r\n1 0 1\r\n[SLAVE]\r\n",
            [Edit("MASTER", "on_exit", "keep")],
            "[LOAD TABLE]\r\n1 0 1\r\n[SLAVE]\r\n\r\n[MASTER]\r\non_exit = keep\r\n",
        ),
        # a byte order mark stays
        ("\ufeff" + MINIMAL, [Edit("SLAVE", "spot_bid", "0.2")], "\ufeff" + MINIMAL + "spot_bid = 0.2\n"),
        # the key is only edited in its own section, and the first such section
        (
            "[MASTER]\n[LOAD TABLE]\n1 0 1\n[SLAVE]\nports = 1\n",
            [Edit("MASTER", "on_exit", "keep")],
            "[MASTER]\non_exit = keep\n[LOAD TABLE]\n1 0 1\n[SLAVE]\nports = 1\n",
        ),
        # no edits: identical
        ("anything\r\n at all", [], "anything\r\n at all"),
    ],
)
def test_apply_edits_cases(before, edits, expected):
    assert apply_edits(before, edits) == expected


def test_crlf_tabs_file_keeps_every_other_byte():
    before = CRLF_TABS.read_bytes().decode("utf-8")
    after = apply_edits(before, [Edit("SLAVE", "spot_bid", "0.07"), Edit("SLAVE", "security_group", "sg-0abc")])
    assert after.startswith("\ufeff")
    assert "\n" not in after.replace("\r\n", "")  # no bare LF crept in
    assert changed_lines(before, after) == [
        "-spot_bid\t= 0.05\r\n",
        "+spot_bid\t= 0.07\r\n",
        "-region = eu-west-1",
        "+region = eu-west-1\r\n",
        "+security_group = sg-0abc",
    ]
    assert not after.endswith("\n")


def test_edits_are_idempotent():
    once = apply_edits(SEED.read_text(), [SYNC, Edit("MASTER", "on_exit", "keep")], table=[LoadRow(1, 0, 2)])
    twice = apply_edits(once, [SYNC, Edit("MASTER", "on_exit", "keep")], table=[LoadRow(1, 0, 2)])
    assert once == twice


def test_table_replacement_keeps_comments_and_aligns():
    before = SEED.read_text()
    table = [LoadRow(0.2, 0, 1), LoadRow(3, 1, 4), LoadRow(12.5, 10, 20), LoadRow(100, 20, 100)]
    after = apply_edits(before, table=table)
    assert after.startswith(
        "[LOAD TABLE]\n#req/s  min max\n0.2     0   1\n3.0     1   4\n12.5    10  20\n100.0   20  100\n\n[MASTER]\n"
    )
    assert after.split("[MASTER]")[1] == before.split("[MASTER]")[1]
    assert rows(parse_conf(after, P)) == ((0.2, 0, 1, 3), (3.0, 1, 4, 4), (12.5, 10, 20, 5), (100.0, 20, 100, 6))


def test_same_table_is_no_change_even_when_spelled_differently():
    before = "[LOAD TABLE]\n0.10 0 1\n1   1   2   # c\n[SLAVE]\n"
    assert apply_edits(before, table=[LoadRow(0.1, 0, 1, 0), LoadRow(1.0, 1, 2, 0)]) == before


@pytest.mark.parametrize(
    "before, expected",
    [
        ("[load table]\n# header\n# more\n\n[SLAVE]\n", "[load table]\n# header\n# more\n1.0     0   1\n\n[SLAVE]\n"),
        ("[LOAD TABLE]\n0.1 0 1\n# kept\n0.5 0 2\n[SLAVE]\n", "[LOAD TABLE]\n1.0     0   1\n# kept\n[SLAVE]\n"),
        ("[SLAVE]\n", "[SLAVE]\n\n[LOAD TABLE]\n#req/s  min max\n1.0     0   1\n"),
        ("[LOAD TABLE]\r\n5 0 1\r\n[SLAVE]\r\n", "[LOAD TABLE]\r\n1.0     0   1\r\n[SLAVE]\r\n"),
    ],
)
def test_table_replacement_cases(before, expected):
    assert apply_edits(before, table=[LoadRow(1, 0, 1)]) == expected


def test_table_replacement_wide_values():
    after = apply_edits("[LOAD TABLE]\n1 0 1\n[SLAVE]\n", table=[LoadRow(0.125, 0, 1), LoadRow(123456.75, 1000, 20000)])
    assert after == "[LOAD TABLE]\n0.125     0    1\n123456.75 1000 20000\n[SLAVE]\n"


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            Edit("LOAD TABLE", "x", "1"),
            "cannot edit section [LOAD TABLE]: only [MASTER] and [SLAVE] take key = value settings",
        ),
        (
            Edit("GENERAL", "x", "1"),
            "cannot edit section [GENERAL]: only [MASTER] and [SLAVE] take key = value settings",
        ),
        (
            Edit("SLAVE", "data_snapshot", "snap-1"),
            "unknown key 'data_snapshot' in [SLAVE]; did you mean 'data_snapshots'?",
        ),
        (
            Edit("SLAVE", "poll_interval", "1"),
            "unknown key 'poll_interval' in [SLAVE]; poll_interval belongs in [MASTER]",
        ),
        (Edit("SLAVE", "spot_bid", "0.1\n[MASTER]"), "spot_bid: a value must be one line, not '0.1\\n[MASTER]'"),
        (
            Edit("SLAVE", "spot_bid", "0.1 # cheap"),
            "spot_bid: '0.1 # cheap' would be read as a comment ('#' after a space)",
        ),
        (Edit("SLAVE", "image_id", "#1"), "image_id: '#1' would be read as a comment ('#' after a space)"),
        (Edit("SLAVE", "spot_bid", "0.1", comment="a\nb"), "spot_bid: a comment must be one line, not 'a\\nb'"),
    ],
)
def test_bad_edits_raise(edit, message):
    with pytest.raises(ConfError) as caught:
        apply_edits(MINIMAL, [edit])
    assert caught.value.errors == [message]


# ---------------------------------------------------------------------------
# update_conf: validated, atomic, owner and mode kept


@pytest.fixture
def conf_file(tmp_path):
    path = tmp_path / "aws_balancer.conf"
    path.write_bytes(SEED.read_bytes())
    return path


@needs_root
def test_update_conf_writes_keeps_owner_mode_and_backup(conf_file):
    os.chown(conf_file, 4242, 4343)
    os.chmod(conf_file, 0o640)
    old_bytes = conf_file.read_bytes()
    result = update_conf(str(conf_file), [SYNC])
    assert result.changed is True
    assert result.before == old_bytes.decode()
    assert result.after == conf_file.read_text()
    assert result.backup == str(conf_file) + ".bak"
    assert pathlib.Path(result.backup).read_bytes() == old_bytes
    for path in (conf_file, pathlib.Path(result.backup)):
        info = os.stat(path)
        assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (4242, 4343, 0o640)
    assert sorted(os.listdir(conf_file.parent)) == ["aws_balancer.conf", "aws_balancer.conf.bak"]
    assert load_conf(str(conf_file)).slave.data_snapshots == ("snap-1", "snap-2")


def test_update_conf_without_backup(conf_file):
    result = update_conf(str(conf_file), [Edit("SLAVE", "spot_bid", "0.2")], backup=False)
    assert result.changed and result.backup is None
    assert os.listdir(conf_file.parent) == ["aws_balancer.conf"]


def test_update_conf_unchanged_writes_nothing(conf_file):
    before = os.stat(conf_file)
    result = update_conf(
        str(conf_file), [Edit("SLAVE", "spot_bid", "0.10")], table=[LoadRow(*r[:3]) for r in SEED_TABLE]
    )
    assert result.changed is False and result.backup is None
    assert result.before == result.after == SEED.read_text()
    after = os.stat(conf_file)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert os.listdir(conf_file.parent) == ["aws_balancer.conf"]


def test_update_conf_check_mode_writes_nothing(conf_file):
    before = os.stat(conf_file)
    result = update_conf(str(conf_file), [SYNC], check=True)
    assert result.changed is True and result.backup is None
    assert "snap-1 snap-2 # synchronized" in result.after
    assert conf_file.read_bytes() == SEED.read_bytes()
    assert os.stat(conf_file).st_ino == before.st_ino
    assert os.listdir(conf_file.parent) == ["aws_balancer.conf"]


@pytest.mark.parametrize(
    "edits, table, expected",
    [
        ([Edit("SLAVE", "spot_bid", "cheap")], None, ["{p}:20: spot_bid: 'cheap' is not a number"]),
        (
            [Edit("MASTER", "poll_interval", "0"), Edit("SLAVE", "ports", "0")],
            None,
            ["{p}:15: poll_interval: '0' must be from 0.01 to 1440 minutes", "{p}:21: ports: '0' is not a port number (1-65535)"],
        ),
        # lines of the NEW text: the table grew by one row
        (
            [Edit("SLAVE", "spot_bid", "-1")],
            [LoadRow(*r[:3]) for r in SEED_TABLE] + [LoadRow(20, 8, 10)],
            ["{p}:21: spot_bid: '-1' must be from 0.001 to 1000 USD/hour"],
        ),
        ([], [], ["{p}:1: [LOAD TABLE] has no rows (expected 'requests/sec min max' lines)"]),
        ([], [LoadRow(1, 2, 1)], ["{p}:3: load table min 2 is greater than max 1"]),
    ],
)
def test_update_conf_invalid_result_leaves_file_alone(conf_file, edits, table, expected):
    with pytest.raises(ConfError) as caught:
        update_conf(str(conf_file), edits, table)
    assert caught.value.errors == [e.format(p=conf_file) for e in expected]
    assert conf_file.read_bytes() == SEED.read_bytes()
    assert os.listdir(conf_file.parent) == ["aws_balancer.conf"]


def test_update_conf_refuses_to_edit_an_invalid_file_without_fixing_it(tmp_path):
    path = tmp_path / "aws_balancer.conf"
    path.write_bytes(BROKEN.read_bytes())
    with pytest.raises(ConfError) as caught:
        update_conf(str(path), [Edit("SLAVE", "spot_bid", "0.1")])
    assert f"{path}:15: spot_bid" not in str(caught.value)  # that one got fixed...
    assert f"{path}:17: unknown key 'regoin'" in str(caught.value)  # ...the rest did not (duplicate gone: 18 -> 17)
    assert path.read_bytes() == BROKEN.read_bytes()


@pytest.mark.parametrize(
    "setup, message",
    [("directory", "{p}: is a directory, not a file"), ("latin1", "{p}: not UTF-8 text (byte 0xe9 on line 25)")],
)
def test_update_conf_unreadable(tmp_path, setup, message):
    path = tmp_path / "aws_balancer.conf"
    if setup == "directory":
        path.mkdir()
    else:
        path.write_bytes(LATIN1.read_bytes())
    with pytest.raises(ConfError) as caught:
        update_conf(str(path), [Edit("SLAVE", "spot_bid", "0.1")])
    assert caught.value.errors == [message.format(p=path)]


def test_update_conf_creates_a_missing_file_when_the_result_is_complete(tmp_path):
    path = tmp_path / "aws_balancer.conf"
    result = update_conf(str(path), [Edit("SLAVE", "spot_bid", "0.2")], table=[LoadRow(1, 0, 2)])
    assert result.changed and result.before == "" and result.backup is None
    assert path.read_text() == "[SLAVE]\nspot_bid = 0.2\n\n[LOAD TABLE]\n#req/s  min max\n1.0     0   2\n"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644


def test_update_conf_missing_file_incomplete_edits(tmp_path):
    path = tmp_path / "aws_balancer.conf"
    with pytest.raises(ConfError) as caught:
        update_conf(str(path), [Edit("SLAVE", "spot_bid", "0.2")])
    assert caught.value.errors == [f"{path}: missing [LOAD TABLE] section"]
    assert not path.exists()


def test_update_conf_write_failure_is_a_conf_error(conf_file, monkeypatch):
    from ansible_collections.gmod.gbrowse_aws.plugins.module_utils import _atomic

    def full(*_args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_atomic.os, "fsync", full)
    with pytest.raises(ConfError) as caught:
        update_conf(str(conf_file), [SYNC])
    monkeypatch.undo()
    assert caught.value.errors == [f"{conf_file}: cannot replace {conf_file}: No space left on device"]
    assert conf_file.read_bytes() == SEED.read_bytes()
    assert os.listdir(conf_file.parent) == ["aws_balancer.conf"]


def test_module_has_no_asserts_and_the_gpl_header():
    source = pathlib.Path(_conf.__file__).read_text()
    assert source.startswith("# -*- coding: utf-8 -*-\n# Copyright (c) 2026, gbrowse_aws developers\n")
    assert not re.search(r"^\s*assert\b", source, re.M)


@pytest.mark.parametrize(
    "slave, same",
    [
        ("image_id = ami-1\ndata_snapshots = snap-1 snap-2\n", True),
        ("image_id = ami-1  # moved\ndata_snapshots = snap-1   snap-2 # synchronized on ...\n", True),
        ("image_id = ami-1\ndata_snapshots = snap-1 snap-3\n", False),  # a sync's new snapshot
        ("image_id = ami-2\ndata_snapshots = snap-1 snap-2\n", False),  # a new image
        ("image_id = ami-1\ndata_snapshots = snap-2 snap-1\n", False),  # another device order
        ("image_id = ami-1\n", False),
        ("image_id = ami-1\ndata_snapshots = snap-1 snap-2\nrefresh_batch = 0\nspot_bid = 1\n", True),
    ],
)
def test_data_generation_follows_image_and_snapshots_only(slave, same):
    """The generation the daemon replaces slaves to: a digest of image_id and data_snapshots, nothing else."""
    base = parse_conf("[LOAD TABLE]\n1 0 1\n[SLAVE]\nimage_id = ami-1\ndata_snapshots = snap-1 snap-2\n", P)
    other = parse_conf(f"[LOAD TABLE]\n1 0 1\n[SLAVE]\n{slave}", P)
    generation = base.poll_settings().generation
    assert generation is not None and re.fullmatch(r"[0-9a-f]{12}", generation)
    assert (other.poll_settings().generation == generation) is same
    assert other.poll_settings().refresh_batch == other.slave.refresh_batch


def test_state_file_history_file_and_history_max_bytes():
    """The state file has one rule (status and the daemon share it); the history's cap has bounds."""
    from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._conf import STATE_DIR

    base = "[LOAD TABLE]\n0 0 1\n[MASTER]\nbalancer_id = b-1\n{extra}[SLAVE]\n"
    conf = parse_conf(base.format(extra=""), "a.conf")
    assert conf.resolved_state_file("host") == f"{STATE_DIR}/b-1.json"
    assert (conf.master.history_file, conf.master.history_max_bytes) == (None, 10 * 1024 * 1024)
    conf = parse_conf(base.format(extra="state_file = /srv/s.json\nhistory_file = /srv/h.jsonl\nhistory_max_bytes = 4096\n"), "a.conf")
    assert (conf.resolved_state_file("host"), conf.master.history_file, conf.master.history_max_bytes) == (
        "/srv/s.json", "/srv/h.jsonl", 4096,
    )
    with pytest.raises(ConfError) as info:
        parse_conf(base.format(extra="history_max_bytes = 4095\nhistory_file = h.jsonl\n"), "a.conf")
    assert info.value.errors == [
        "a.conf:5: history_max_bytes: '4095' must be from 4096 to 1e+09 bytes",
        "a.conf:6: history_file: 'h.jsonl' is not an absolute path",
    ]


def test_spend_cap_and_fallback_reach_the_poll_settings():
    conf = parse_conf(
        "[MASTER]\nmax_hourly_spend = 1.5\non_demand_fallback = 4\n" + SLAVE_HEAD.replace("[MASTER]\n", "")
        + "spot_bid = 0.2\non_demand_price = 0.4\n",
        P,
    )
    settings = conf.poll_settings()
    assert (settings.max_hourly_spend, settings.spot_bid, settings.on_demand_fallback, settings.on_demand_price) == (
        1.5, 0.2, 4, 0.4,
    )
    default = parse_conf(SLAVE_HEAD, P).poll_settings()
    assert (default.max_hourly_spend, default.on_demand_fallback, default.on_demand_price) == (None, 0, None)


@pytest.mark.parametrize(
    "master, slave, changed",
    [
        ("", "", []),
        # applied by a reload: not reported
        ("poll_interval = 1\nscale_in_window = 20\nserver_status_url = http://127.0.0.1/server-status\n", "", []),
        ("metrics_listen = 127.0.0.1:9465\n", "", ["metrics_listen"]),
        # the default state file is named after the id: it moves with it
        ("balancer_id = prod\nhistory_file = /var/log/b.jsonl\n", "", ["balancer_id", "state_file", "history_file"]),
        ("state_file = /run/b.json\n", "region = eu-west-1\n", ["state_file", "region"]),
        ("interruption_queue = https://sqs.us-west-2.amazonaws.com/123456789012/q\n", "", ["interruption_queue"]),
    ],
)
def test_start_only_changes_name_what_a_reload_cannot_apply(master, slave, changed):
    started = parse_conf(MINIMAL, P)
    text = "[MASTER]\n" + master + MINIMAL.replace("[SLAVE]\n", "[SLAVE]\n" + slave)
    assert start_only_changes(started, parse_conf(text, P), "h") == changed
    assert start_only_changes(started, started, "h") == []


def test_start_only_keys_are_keys():
    keys = conf_keys()
    assert all(name in keys[section] for section, names in START_ONLY.items() for name in names)
