# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Lines of the INI-like files the balancer reads and edits: aws_balancer.conf, renderfarm.conf, GBrowse.conf.

Their grammars differ past the first look (``key = value`` with trailing
comments in ours, GBrowse's ``tag = value`` with continuation lines), but what
a line is, which lines are blank or comments, and when two section names are
the same is one rule, here. Each line keeps its own ending (``\\n``,
``\\r\\n`` or none) so that an edit can put every other byte back.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass


def split_lines(text: str) -> list[tuple[str, str]]:
    """(line, ending) pairs; ending is '\\n', '\\r\\n' or '' for a last line without one."""
    if not text:
        return []
    parts = text.split("\n")
    pairs = []
    for index, part in enumerate(parts):
        if index == len(parts) - 1:
            if part:
                pairs.append((part, ""))
        elif part.endswith("\r"):
            pairs.append((part[:-1], "\r\n"))
        else:
            pairs.append((part, "\n"))
    return pairs


def canonical_section(name: str) -> str:
    """A section name as compared: blanks folded, upper case (`[load table]` is `[LOAD TABLE]`)."""
    return " ".join(name.split()).upper()


@dataclass(frozen=True)
class RawLine:
    """One physical line before a file's own grammar looks at it."""

    number: int  # 1-based
    text: str  # without its ending
    eol: str
    stripped: str
    kind: str  # blank | comment | code


def raw_lines(text: str) -> t.Iterator[RawLine]:
    """Every line of ``text``, blank, comment (first non-blank character ``#``) or code."""
    for number, (content, eol) in enumerate(split_lines(text), 1):
        stripped = content.strip()
        kind = "blank" if not stripped else "comment" if stripped.startswith("#") else "code"
        yield RawLine(number, content, eol, stripped, kind)


__all__ = ["RawLine", "canonical_section", "raw_lines", "split_lines"]
