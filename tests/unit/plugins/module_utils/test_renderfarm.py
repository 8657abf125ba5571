# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import os
import random
import stat

import pytest

from ansible_collections.gmod.gbrowse_aws.plugins.module_utils import _atomic
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._renderfarm import (
    EMPTY,
    RenderFarm,
    parse_renderfarm,
    plan_renderfarm,
    read_renderfarm,
    render_renderfarm,
    update_renderfarm,
    write_renderfarm,
)

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")

A = "http://10.0.0.5:8101"
B = "http://10.0.0.6:8101"
C = "http://10.0.0.10:8101"

#: What GBrowse ships (conf/renderfarm.conf).
SHIPPED = "[GENERAL]\n\nrenderfarm = 0\n\nremote renderer = \n"
#: What the original gbrowse_configure_slaves.pl wrote, typo included.
ORIGINAL = f"[GENERAl]\nrenderfarm = 1\nremote renderer = \n\t{A}\n\t{B}\n"
#: An admin's file with more in it than the render farm.
ADMIN = f"""# render farm of www.example.org -- managed partly by hand
[GENERAL]
renderfarm = 0
url_fetch_timeout = 5   # seconds
remote renderer = {C}
                  {A}
   # the spare one
                  http://spare:8101
render_timeout = 30

[EXTRA]
note = remote renderer = not this one
"""


@pytest.mark.parametrize(
    "text, expected",
    [
        ("", EMPTY),
        (SHIPPED, EMPTY),
        (ORIGINAL, RenderFarm(True, (A, B))),
        (f"[GENERAL]\nrenderfarm = 1\nremote renderer =\n\t{A}\n\t{B}\n", RenderFarm(True, (A, B))),
        (f"[general]\r\nrenderfarm=1\r\nremote renderer = {B} {A}\r\n", RenderFarm(True, (B, A))),
        (ADMIN, RenderFarm(False, (C, A, "http://spare:8101"))),
        (f"[GENERAL]\nremote renderer = {A}\n  {A} {B}\n\t{A}\n", RenderFarm(False, (A, B))),  # duplicates dropped
        (f"renderfarm = 1\nremote renderer = {A}\n[OTHER]\nremote renderer = {B}\n", RenderFarm(True, (A,))),
        (f"[GENERAL]\nremote renderer = {A}\nremote renderer = {B}\n", RenderFarm(False, (B,))),  # the later one wins
        (f"[GENERAL]\nremote renderer = {A}\nother = 1\n  {B}\n", RenderFarm(False, (A,))),  # continues 'other'
        (f"[GENERAL]\nremote   Renderer = {A} # comment\n", RenderFarm(False, (A,))),
        ("[GENERAL]\nrenderfarm = 0.0\n", RenderFarm(True, ())),  # Perl's truth
        ("[GENERAL]\nrenderfarm =\n", EMPTY),
    ],
)
def test_parse(text, expected):
    assert parse_renderfarm(text) == expected


def test_render_new_file_exact_original_format():
    assert render_renderfarm(None, [B, A]) == f"[GENERAL]\nrenderfarm = 1\nremote renderer =\n\t{A}\n\t{B}\n"
    assert render_renderfarm("", [A]) == f"[GENERAL]\nrenderfarm = 1\nremote renderer =\n\t{A}\n"
    assert render_renderfarm(None, []) == "[GENERAL]\nrenderfarm = 0\nremote renderer =\n"


def test_render_sorts_naturally_and_dedupes():
    text = render_renderfarm(None, [C, B, A, B, "  ", ""])
    assert text == f"[GENERAL]\nrenderfarm = 1\nremote renderer =\n\t{A}\n\t{B}\n\t{C}\n"


@pytest.mark.parametrize(
    "text, renderers, expected",
    [
        (SHIPPED, [A], f"[GENERAL]\n\nrenderfarm = 1\n\nremote renderer =\n\t{A}\n"),
        (ORIGINAL, [], "[GENERAl]\nrenderfarm = 0\nremote renderer =\n"),
        (ORIGINAL, [C], f"[GENERAl]\nrenderfarm = 1\nremote renderer =\n\t{C}\n"),
        # an admin's other keys, comments and sections stay where they were
        (
            ADMIN,
            [B],
            f"""# render farm of www.example.org -- managed partly by hand
[GENERAL]
renderfarm = 1
url_fetch_timeout = 5   # seconds
remote renderer =
\t{B}
   # the spare one
render_timeout = 30

[EXTRA]
note = remote renderer = not this one
""",
        ),
        # missing settings are added where they belong
        ("[GENERAL]\ntimeout = 3\n", [A], f"[GENERAL]\nrenderfarm = 1\nremote renderer =\n\t{A}\ntimeout = 3\n"),
        ("[GENERAL]\nrenderfarm=0\n", [A], f"[GENERAL]\nrenderfarm=1\nremote renderer =\n\t{A}\n"),
        ("[GENERAL]\nremote renderer = x\n", [A], f"[GENERAL]\nrenderfarm = 1\nremote renderer =\n\t{A}\n"),
        # no [GENERAL]: one is put on top
        ("[OTHER]\nx = 1\n", [A], f"[GENERAL]\nrenderfarm = 1\nremote renderer =\n\t{A}\n\n[OTHER]\nx = 1\n"),
        ("# just a comment", [], "[GENERAL]\nrenderfarm = 0\nremote renderer =\n\n# just a comment\n"),
        # settings before any header are [GENERAL]'s, as in GBrowse
        (
            f"renderfarm = 1\nremote renderer = {A}\n[OTHER]\n",
            [B],
            f"renderfarm = 1\nremote renderer =\n\t{B}\n[OTHER]\n",
        ),
        # duplicates are folded into the first
        (
            f"[GENERAL]\nrenderfarm = 1\nremote renderer = {A}\nrenderfarm = 0\nremote renderer = {B}\n\t{C}\n",
            [A],
            f"[GENERAL]\nrenderfarm = 1\nremote renderer =\n\t{A}\n",
        ),
        # indented lines that continue nothing must not become renderers
        (
            "[GENERAL]\n  orphan\n# c\nfoo = 1\n",
            [A],
            f"[GENERAL]\n  orphan\n# c\nrenderfarm = 1\nremote renderer =\n\t{A}\nfoo = 1\n",
        ),
        ("  orphan\n[X]\n", [A], f"  orphan\n[GENERAL]\nrenderfarm = 1\nremote renderer =\n\t{A}\n\n[X]\n"),
        # continuation lines of renderfarm are part of its value: they go with it
        ("[GENERAL]\nrenderfarm =\n\t1\nk = v\n", [], "[GENERAL]\nrenderfarm = 0\nremote renderer =\nk = v\n"),
        # CRLF stays CRLF
        (
            "[GENERAL]\r\nrenderfarm = 0\r\nremote renderer = \r\n",
            [A],
            f"[GENERAL]\r\nrenderfarm = 1\r\nremote renderer =\r\n\t{A}\r\n",
        ),
    ],
)
def test_render_keeps_everything_else(text, renderers, expected):
    result = render_renderfarm(text, renderers)
    assert result == expected
    assert parse_renderfarm(result) == RenderFarm(bool(renderers), tuple(sorted(set(renderers), key=[A, B, C].index)))


@pytest.mark.parametrize("bad", ["http://a:1 http://b:1", "#http://a:1", "http://a:1\n"[:-1] + "\tx"])
def test_render_refuses_unwritable_renderers(bad):
    with pytest.raises(ValueError, match="cannot be written"):
        render_renderfarm(None, [bad])


NOISE = [
    "[GENERAL]",
    "[general]",
    "[X]",
    "renderfarm = 1",
    "renderfarm = 0",
    "renderfarm=",
    " renderfarm = 1",
    "\t0",
    "remote renderer = http://x:1",
    "remote renderer = a b c",
    "REMOTE RENDERER=z",
    "remote renderer =",
    "\thttp://y:1",
    "# c",
    "",
    "  ",
    "k = v",
    "junk",
    "\r",
    "[",
    "  # indented comment",
]  # not indented section headers: GBrowse itself may read those as continuation lines


@pytest.mark.parametrize("seed", range(200))
def test_render_then_parse_roundtrip_on_noise(seed):
    rng = random.Random(seed)
    text = rng.choice(["\n", "\r\n"]).join(rng.choice(NOISE) for dummy in range(rng.randint(0, 25)))
    wanted = rng.sample([A, B, C], rng.randint(0, 3))
    result = render_renderfarm(text, wanted)
    assert set(parse_renderfarm(result).renderers) == set(wanted)
    assert parse_renderfarm(result).enabled == bool(wanted)
    assert render_renderfarm(result, wanted) == result  # stable


# ---------------------------------------------------------------------------
# Files


def test_read_missing_is_empty(tmp_path):
    assert read_renderfarm(str(tmp_path / "renderfarm.conf")) == EMPTY


def test_write_new_file(tmp_path):
    path = tmp_path / "renderfarm.conf"
    assert write_renderfarm(str(path), [B, A]) is True
    assert path.read_text() == f"[GENERAL]\nrenderfarm = 1\nremote renderer =\n\t{A}\n\t{B}\n"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    assert os.listdir(tmp_path) == ["renderfarm.conf"]  # no .bak, no temp files
    assert read_renderfarm(str(path)) == RenderFarm(True, (A, B))


def test_no_slaves_and_no_file_is_no_change(tmp_path):
    path = tmp_path / "renderfarm.conf"
    assert write_renderfarm(str(path), []) is False
    assert not path.exists()


@pytest.mark.parametrize(
    "text, renderers, changed",
    [
        (ORIGINAL, [B, A], False),  # same set, other order
        (ORIGINAL, [A, B, A], False),
        (ORIGINAL, [A], True),
        (ORIGINAL, [A, B, C], True),
        (ORIGINAL, [], True),
        (SHIPPED, [], False),
        (SHIPPED, [A], True),
        (f"[GENERAL]\nrenderfarm = 0\nremote renderer = {A}\n", [A], True),  # the flag is wrong
        ("[GENERAL]\nrenderfarm = 1\nremote renderer =\n", [], True),
        (f"[general]\nrenderfarm = yes\nremote renderer = {B}\n  {A}\n", [A, B], False),
    ],
)
def test_write_only_when_the_set_changes(tmp_path, text, renderers, changed):
    path = tmp_path / "renderfarm.conf"
    path.write_text(text)
    before = os.stat(path)
    assert write_renderfarm(str(path), renderers) is changed
    after = os.stat(path)
    if changed:
        assert parse_renderfarm(path.read_text()) == RenderFarm(
            bool(renderers), tuple(sorted(set(renderers), key=[A, B, C].index))
        )
        assert after.st_ino != before.st_ino  # replaced by rename
    else:
        assert path.read_text() == text
        assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert os.listdir(tmp_path) == ["renderfarm.conf"]
    assert write_renderfarm(str(path), renderers) is False  # idempotent


def test_check_mode_writes_nothing(tmp_path):
    path = tmp_path / "renderfarm.conf"
    path.write_text(SHIPPED)
    assert write_renderfarm(str(path), [A], check=True) is True
    assert path.read_text() == SHIPPED
    assert write_renderfarm(str(tmp_path / "new.conf"), [A], check=True) is True
    assert os.listdir(tmp_path) == ["renderfarm.conf"]


def test_plan_gives_before_and_after(tmp_path):
    path = tmp_path / "renderfarm.conf"
    path.write_text(SHIPPED)
    plan = plan_renderfarm(str(path), [A])
    assert plan.changed is True
    assert plan.before == SHIPPED
    assert plan.after == f"[GENERAL]\n\nrenderfarm = 1\n\nremote renderer =\n\t{A}\n"
    assert (plan.old, plan.new) == (EMPTY, RenderFarm(True, (A,)))
    same = plan_renderfarm(str(path), [])
    assert (same.changed, same.before, same.after) == (False, SHIPPED, SHIPPED)
    missing = plan_renderfarm(str(tmp_path / "none.conf"), [A])
    assert (missing.changed, missing.before) == (True, "")
    assert path.read_text() == SHIPPED  # planning writes nothing


def test_update_returns_the_plan_and_writes(tmp_path):
    path = tmp_path / "renderfarm.conf"
    path.write_text(ADMIN)
    result = update_renderfarm(str(path), [B])
    assert result.changed and result.before == ADMIN and result.after == path.read_text()
    assert "url_fetch_timeout = 5   # seconds\n" in result.after and "[EXTRA]\n" in result.after


@needs_root
def test_write_keeps_owner_and_mode(tmp_path):
    path = tmp_path / "renderfarm.conf"
    path.write_text(SHIPPED)
    os.chown(path, 4242, 4343)
    os.chmod(path, 0o664)
    assert write_renderfarm(str(path), [A]) is True
    info = os.stat(path)
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (4242, 4343, 0o664)


def test_undecodable_bytes_survive(tmp_path):
    path = tmp_path / "renderfarm.conf"
    path.write_bytes(b"# r\xe9glages\n[GENERAL]\nrenderfarm = 0\nremote renderer =\n")
    assert write_renderfarm(str(path), [A]) is True
    assert path.read_bytes() == b"# r\xe9glages\n[GENERAL]\nrenderfarm = 1\nremote renderer =\n\t" + A.encode() + b"\n"


def test_failed_write_leaves_the_file(tmp_path, monkeypatch):
    path = tmp_path / "renderfarm.conf"
    path.write_text(SHIPPED)

    def full(*_args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_atomic.os, "fsync", full)
    with pytest.raises(OSError, match="No space left"):
        write_renderfarm(str(path), [A])
    monkeypatch.undo()
    assert path.read_text() == SHIPPED
    assert os.listdir(tmp_path) == ["renderfarm.conf"]
