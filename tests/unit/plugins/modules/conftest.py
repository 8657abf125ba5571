# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Run a module's ``main()`` in this process, as amazon.aws's and community.crypto's unit tests do.

The arguments go in through ansible-core's ``patch_module_args`` (what the
controller would send); ``exit_json``/``fail_json`` are caught as exceptions
so a test sees the result dict. What the module logs (its invocation, with
``no_log`` values hidden) is kept, so a test can look for a leaked secret.
The modules' real work (files, HTTP, EC2) is in tests/integration and
tests/system; here it is argument handling, messages and check mode.
"""

from __future__ import annotations

import dataclasses
import typing as t

import pytest
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args


class _Exit(Exception):
    def __init__(self, module: basic.AnsibleModule, result: dict[str, t.Any]) -> None:
        super().__init__(result)
        self.module, self.result = module, result


@dataclasses.dataclass
class Outcome:
    """What one run of ``main()`` ended with."""

    failed: bool
    result: dict[str, t.Any]
    module: basic.AnsibleModule
    logged: list[str]

    @property
    def msg(self) -> str:
        return str(self.result.get("msg", ""))

    def refused(self, *words: str) -> bool:
        """It failed, and its message names each of ``words`` (the options at fault)."""
        return self.failed and all(word in self.msg for word in words)


def _exit_json(self: basic.AnsibleModule, **kwargs: t.Any) -> t.NoReturn:
    kwargs.setdefault("changed", False)
    raise _Exit(self, kwargs)


def _fail_json(self: basic.AnsibleModule, msg: str, **kwargs: t.Any) -> t.NoReturn:
    raise _Exit(self, dict(kwargs, msg=msg, failed=True))


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch) -> t.Callable[..., Outcome]:
    """``run(module.main, args, check_mode=False, diff=False)`` -> :class:`Outcome`."""
    logged: list[str] = []
    monkeypatch.setattr(basic.AnsibleModule, "exit_json", _exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", _fail_json)
    # The invocation goes to syslog/journald in a real run: keep it here instead.
    monkeypatch.setattr(basic.AnsibleModule, "log", lambda self, msg, log_args=None: logged.append(f"{msg} {log_args}"))

    def _run(main: t.Callable[[], None], args: dict[str, t.Any], *, check_mode: bool = False, diff: bool = False) -> Outcome:
        args = dict(args, _ansible_check_mode=check_mode, _ansible_diff=diff)
        with patch_module_args(args):
            try:
                main()
            except _Exit as end:
                return Outcome("failed" in end.result, end.result, end.module, list(logged))
        raise AssertionError("main() returned without exit_json or fail_json")

    return _run
