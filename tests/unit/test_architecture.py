# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""docs/dev/architecture.md's module table says what each module_utils file imports: keep it true."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UTILS = ROOT / "plugins" / "module_utils"
DOC = ROOT / "docs" / "dev" / "architecture.md"
THIRD_PARTY = {"boto3": "boto3", "botocore": "botocore", "ansible": "ansible-core", "prometheus_client": "prometheus_client"}


def imports_of(path: Path) -> set[str]:
    """The module_utils modules and third-party packages ``path`` imports, anywhere in the file."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module.endswith(".module_utils"):
                found.update(a.name for a in node.names)
            elif ".module_utils._" in node.module:
                found.add(node.module.rsplit(".", 1)[1])
            elif node.module.split(".")[0] in THIRD_PARTY:
                found.add(THIRD_PARTY[node.module.split(".")[0]])
        elif isinstance(node, ast.Import):
            found.update(THIRD_PARTY[a.name.split(".")[0]] for a in node.names if a.name.split(".")[0] in THIRD_PARTY)
    found.discard(path.stem)
    return found


def documented() -> dict[str, set[str]]:
    rows: dict[str, set[str]] = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        m = re.match(r"\| `(_\w+)\.py` \|.*\| (?P<imports>[^|]*) \|$", line)
        if m:
            cell = m.group("imports")
            names = set(re.findall(r"`(_\w+)`", cell))
            names.update(name for name in THIRD_PARTY.values() if re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", cell))
            rows[m.group(1)] = names
    return rows


MODULES = sorted(p.stem for p in UTILS.glob("_*.py"))


def test_every_module_has_a_row() -> None:
    assert sorted(documented()) == MODULES


@pytest.mark.parametrize("module", MODULES)
def test_row_lists_the_imports(module: str) -> None:
    assert documented().get(module) == imports_of(UTILS / f"{module}.py")


def test_nothing_below_the_fronts_imports_ansible() -> None:
    """The daemon runs without ansible-core: only the sync's command front may import it."""
    assert [m for m in MODULES if "ansible-core" in imports_of(UTILS / f"{m}.py")] == ["_sync_cli"]
