# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""mod_status_info's arguments: URL, timeout, interval, the password kept out of logs and results.

No HTTP here: the module's LoadMeter is replaced by a fake that records what it
was given. The real page is read in tests/integration/targets/mod_status_info.
"""

from __future__ import annotations

import types

import pytest

from ansible_collections.gmod.gbrowse_aws.plugins.modules import mod_status_info

URL = "http://127.0.0.1/server-status"
SECRET = "s3cret-Pa55"


class FakeMeter:
    made: list[FakeMeter] = []

    def __init__(self, url, **kwargs):
        self.url, self.kwargs, self.samples = url, kwargs, 0
        FakeMeter.made.append(self)

    def sample(self):
        self.samples += 1
        status = types.SimpleNamespace(as_dict=lambda: {"total_accesses": 10 * self.samples, "busy_workers": 1})
        return types.SimpleNamespace(status=status, rate=2.5, interval=0.0, restarted=False)


@pytest.fixture(autouse=True)
def meter(monkeypatch):
    FakeMeter.made = []
    monkeypatch.setattr(mod_status_info, "LoadMeter", FakeMeter)
    monkeypatch.setattr(mod_status_info.time, "sleep", lambda seconds: None)
    return FakeMeter


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ({}, ["url"]),
        ({"url": URL, "timeout": "soon"}, ["timeout"]),
        ({"url": URL, "validate_certs": "perhaps"}, ["validate_certs"]),
        ({"url": URL, "method": "GET"}, ["method"]),
    ],
    ids=["url-required", "timeout-a-number", "validate-certs-a-bool", "unknown"],
)
def test_ansible_refuses_the_arguments_naming_them(run, meter, args, words):
    out = run(mod_status_info.main, args)
    assert out.refused(*words), out.msg
    assert meter.made == []


@pytest.mark.parametrize(
    ("args", "start"),
    [
        ({"timeout": 0}, "timeout: must be a positive number of seconds"),
        ({"timeout": "nan"}, "timeout: must be a positive number of seconds"),
        ({"interval": -1}, "interval: must be 0 or more seconds"),
        ({"url": "ftp://127.0.0.1/server-status"}, "url: "),
        ({"url": "not a url"}, "url: "),
    ],
    ids=["timeout-zero", "timeout-nan", "interval-negative", "url-scheme", "url-shape"],
)
def test_the_module_refuses_values_naming_the_option(run, meter, args, start):
    out = run(mod_status_info.main, dict({"url": URL}, **args))
    assert out.failed
    assert out.msg.startswith(start), out.msg
    assert meter.made == []


def test_the_password_is_no_log_and_reaches_only_the_meter(run, meter):
    out = run(mod_status_info.main, {"url": URL, "url_username": "watch", "url_password": SECRET})
    assert not out.failed, out.msg
    assert SECRET in out.module.no_log_values
    assert out.logged and not any(SECRET in line for line in out.logged)
    assert SECRET not in repr(out.result)
    assert meter.made[0].kwargs["password"] == SECRET and meter.made[0].kwargs["username"] == "watch"


def test_a_password_in_the_url_is_not_in_the_result(run, meter):
    out = run(mod_status_info.main, {"url": f"http://watch:{SECRET}@127.0.0.1/server-status"})
    assert not out.failed, out.msg
    assert out.result["url"] == "http://127.0.0.1/server-status?auto"
    assert SECRET not in repr(out.result)


@pytest.mark.parametrize("check_mode", [False, True])
def test_it_reads_alike_in_check_mode(run, meter, check_mode):
    out = run(mod_status_info.main, {"url": URL, "interval": 1, "timeout": 2}, check_mode=check_mode)
    assert not out.failed, out.msg
    assert out.result["changed"] is False
    assert (out.result["total_accesses"], out.result["rate"]) == (20, 2.5)
    assert meter.made[0].samples == 2 and meter.made[0].kwargs["timeout"] == 2
