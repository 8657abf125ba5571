# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The renderfarm module's arguments: state, renderer URLs, an unusable path; check mode writes nothing.

The file's format is tests/unit/plugins/module_utils/test_renderfarm.py.
"""

from __future__ import annotations

import pytest

from ansible_collections.gmod.gbrowse_aws.plugins.modules import renderfarm

URL = "http://10.0.0.5:8101"


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ({"renderers": [URL]}, ["path"]),
        ({"renderers": [URL], "state": "replace"}, ["state", "present", "absent", "exact"]),
        ({"renderers": [URL], "mode": "0644"}, ["mode"]),
    ],
    ids=["path-required", "state-choices", "unknown"],
)
def test_ansible_refuses_the_arguments_naming_them(run, tmp_path, args, words):
    if "path" not in words:
        args = dict(args, path=str(tmp_path / "renderfarm.conf"))
    out = run(renderfarm.main, args)
    assert out.refused(*words), out.msg
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("bad", ["ftp://10.0.0.5:8101", "10.0.0.5:8101", "http://", "http://10.0.0.5 :8101"])
def test_a_renderer_that_is_not_an_http_url_is_named(run, tmp_path, bad):
    out = run(renderfarm.main, {"path": str(tmp_path / "renderfarm.conf"), "renderers": [URL, bad]})
    assert out.failed
    assert out.msg == f"renderers: not an http:// or https:// URL with a host: {bad.strip()!r}"
    assert list(tmp_path.iterdir()) == []


def test_a_directory_for_path_is_named(run, tmp_path):
    out = run(renderfarm.main, {"path": str(tmp_path), "renderers": [URL], "state": "exact"})
    assert out.failed
    assert out.msg.startswith("path: ") and str(tmp_path) in out.msg, out.msg


@pytest.mark.parametrize(
    ("state", "given", "after"),
    [
        ("present", ["http://10.0.0.6:8101"], [URL, "http://10.0.0.6:8101"]),
        ("absent", [URL], []),
        ("exact", ["http://10.0.0.7:8101"], ["http://10.0.0.7:8101"]),
    ],
)
def test_check_mode_reports_the_change_and_writes_nothing(run, tmp_path, state, given, after):
    path = tmp_path / "renderfarm.conf"
    run(renderfarm.main, {"path": str(path), "renderers": [URL], "state": "exact"})
    before = path.read_bytes()
    out = run(renderfarm.main, {"path": str(path), "renderers": given, "state": state}, check_mode=True, diff=True)
    assert not out.failed, out.msg
    assert out.result["changed"] and out.result["renderers"] == after
    assert out.result["diff"]["before"] != out.result["diff"]["after"]
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_check_mode_creates_no_file(run, tmp_path):
    path = tmp_path / "renderfarm.conf"
    out = run(renderfarm.main, {"path": str(path), "renderers": [URL]}, check_mode=True)
    assert not out.failed and out.result["changed"] and out.result["added"] == [URL]
    assert list(tmp_path.iterdir()) == []
