"""Getopt::Long's spellings, one rule for both commands (_getopt.py)."""

from __future__ import annotations

import argparse

import pytest

from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._getopt import getopt_argv


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    parser.add_argument("-c", "--conf")
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--ssh_key")
    return parser


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["-conf", "a"], ["--conf", "a"]),
        (["--CONF=a"], ["--conf=a"]),
        (["-c", "a"], ["-c", "a"]),  # the parser's own short option
        (["-k", "a"], ["--ssh_key", "a"]),  # a letter the caller maps
        (["--Dry_Run", "-SSH-KEY", "k"], ["--dry-run", "--ssh_key", "k"]),
        (["-dry_r", "--CON=a"], ["--dry-r", "--con=a"]),  # prefixes: argparse resolves them
        (["-zzz", "--", "-conf"], ["-zzz", "--", "-conf"]),
        (["-1", "--conf", "-"], ["-1", "--conf", "-"]),
    ],
)
def test_getopt_spellings(argv: list[str], expected: list[str]) -> None:
    assert getopt_argv(argv, _parser(), {"-k": "--ssh_key"}) == expected


def test_argparse_takes_what_comes_out() -> None:
    args = _parser().parse_args(getopt_argv(["-dry_r", "--CON=a", "-ssh", "k"], _parser()))
    assert (args.dry_run, args.conf, args.ssh_key) == (True, "a", "k")
