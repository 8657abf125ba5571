# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Getopt::Long's spellings for argparse: the original Perl scripts' command lines keep working.

Both commands (``gbrowse_aws_balancer`` and ``gbrowse_sync_aws_slave``)
replace Perl scripts whose options Getopt::Long parsed: one dash or two
(``-conf``), any case (``--CONF``), ``_`` or ``-`` alike (``--dry_run``),
unique prefixes (``-verb``), single letters. argparse takes prefixes itself;
:func:`getopt_argv` rewrites the rest into the parser's own spelling, once
for both commands.
"""

from __future__ import annotations

import argparse
import typing as t


def _folded(name: str) -> str:
    return name.lower().replace("_", "-")


def getopt_argv(
    argv: t.Sequence[str], parser: argparse.ArgumentParser, short: t.Mapping[str, str] | None = None
) -> list[str]:
    """``argv`` with Getopt::Long spellings turned into ``parser``'s (values and ``--`` onwards untouched).

    ``short`` maps single letters the parser does not define (``-c``) to long
    options (``--conf``), as the original's unique prefixes. A word that is
    no option's name or prefix is left as given, for argparse to refuse.
    """
    longs = [opt[2:] for action in parser._actions for opt in action.option_strings if opt.startswith("--")]
    exact = {_folded(name): name for name in longs}
    out: list[str] = []
    for index, arg in enumerate(argv):
        if arg == "--":
            return out + list(argv[index:])
        name, sep, value = arg.partition("=")
        if short and name in short:
            name = short[name]
        elif name.startswith("-") and len(name) > 2 and name[1:2].isalpha() or name.startswith("--"):
            word = _folded(name.lstrip("-"))
            if word and word in exact:
                name = "--" + exact[word]
            elif word and any(_folded(opt).startswith(word) for opt in longs):
                name = "--" + word  # a prefix: argparse resolves it (or says it is ambiguous)
        out.append(name + sep + value)
    return out


__all__ = ["getopt_argv"]
