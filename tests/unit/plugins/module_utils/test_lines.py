"""What a line, a blank, a comment and a section name are: one rule for every INI-like file (_lines.py)."""

from __future__ import annotations

from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._lines import canonical_section, raw_lines, split_lines


def test_each_line_keeps_its_ending() -> None:
    assert split_lines("a\r\nb\n\nc") == [("a", "\r\n"), ("b", "\n"), ("", "\n"), ("c", "")]
    assert split_lines("") == [] and split_lines("a\n") == [("a", "\n")]


def test_blank_comment_code() -> None:
    kinds = [(raw.number, raw.kind, raw.stripped) for raw in raw_lines("  \n  # c\nkey = 1 # x\n\t[S]\r\n")]
    assert kinds == [(1, "blank", ""), (2, "comment", "# c"), (3, "code", "key = 1 # x"), (4, "code", "[S]")]


def test_section_names_compare_folded() -> None:
    assert canonical_section(" load \t table ") == "LOAD TABLE" == canonical_section("LOAD TABLE")


def test_the_conf_and_the_render_farm_agree_on_comments() -> None:
    """A line is a comment to both readers, or to neither."""
    from ansible_collections.gmod.gbrowse_aws.plugins.module_utils import _conf, _renderfarm

    text = "[GENERAL]\n  # remote renderer = http://h:1\nremote renderer = http://h:2\n"
    conf_kinds = [line.kind for line in _conf._scan(text)]  # pylint: disable=protected-access
    farm_kinds = [line.kind for line in _renderfarm._scan(text)]  # pylint: disable=protected-access
    assert conf_kinds[1] == farm_kinds[1] == "comment"
    assert _renderfarm.parse_renderfarm(text).renderers == ("http://h:2",)
