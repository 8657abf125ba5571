# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One supported range, stated the same way everywhere; requirements files that agree.

tests/config.yml's ``python_requires`` is the range; meta/runtime.yml's ``requires_ansible``
the ansible-core floor; requirements.txt the Python package ranges.
"""
from __future__ import annotations

import pathlib
import re
import sys

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

TOP = pathlib.Path(__file__).resolve().parents[2]
PY_RANGE = SpecifierSet(yaml.safe_load((TOP / "tests/config.yml").read_text())["modules"]["python_requires"])
MINORS = [m for m in range(0, 40) if f"3.{m}" in PY_RANGE]
PY_TEXT = f"3.{MINORS[0]} to 3.{MINORS[-1]}"
ANSIBLE_FLOOR = Version(yaml.safe_load((TOP / "meta/runtime.yml").read_text())["requires_ansible"].lstrip(">="))


def _read(rel):
    return (TOP / rel).read_text(encoding="utf-8")


def _pins(rel):
    return {Requirement(line).name.lower(): Requirement(line) for line in _read(rel).splitlines()
            if line.strip() and not line.startswith(("#", "-r"))}


def test_the_range_is_one_contiguous_span():
    assert MINORS == list(range(MINORS[0], MINORS[-1] + 1)) and len(MINORS) >= 2


@pytest.mark.parametrize("rel", [
    "README.md", "docs/sync.md", "docs/dev/architecture.md", "roles/balancer/README.md",
    "roles/balancer/meta/argument_specs.yml", "plugins/doc_fragments/requirements.py", "requirements.txt",
])
def test_each_statement_of_the_python_range_is_the_same(rel):
    assert f"ython {PY_TEXT}" in " ".join(_read(rel).split())


def test_no_other_python_range_is_stated():
    files = [TOP / "README.md", *TOP.glob("docs/**/*.md"), *TOP.glob("roles/*/README.md"),
             *TOP.glob("roles/*/meta/*.yml"), *TOP.glob("plugins/**/*.py"), TOP / "galaxy.yml"]
    stray = re.compile(r"python\s*(>=|>|≥)\s*3|python 3\.\d+ or (newer|later)|python 3\.\d+ to 3\.\d+", re.I)
    for path in files:
        for m in stray.finditer(" ".join(path.read_text(encoding="utf-8").split())):
            assert m.group(0).lower() == f"python {PY_TEXT}", f"{path.relative_to(TOP)}: {m.group(0)!r}"


def test_find_python_searches_exactly_the_range():
    listed = re.search(r'versions=\$\{1:-"([0-9. ]+)"\}', _read("hacking/find-python")).group(1).split()
    assert sorted(listed, key=Version) == [f"3.{m}" for m in MINORS]


def test_this_interpreter_is_in_the_range():
    assert "%d.%d" % sys.version_info[:2] in PY_RANGE


def test_both_ends_are_tested():
    """hacking/oldest runs the oldest Python with the ansible-core floor; .venv the newest of both."""
    oldest = _pins("requirements/py3.11.txt")["ansible-core"]
    newest = _pins("requirements/constraints-dev.txt")["ansible-core"]
    assert "requirements/py3.11.txt" in _read("hacking/oldest") and f"3.{MINORS[0]}" in _read("hacking/oldest")
    for pin in (oldest, newest):
        assert Version(next(iter(pin.specifier)).version) >= ANSIBLE_FLOOR
    assert Version(next(iter(oldest.specifier)).version).release[:2] == ANSIBLE_FLOOR.release[:2]
    assert f"ansible-core >= {ANSIBLE_FLOOR.major}.{ANSIBLE_FLOOR.minor}" in _read("README.md")
    meta = yaml.safe_load(_read("roles/balancer/meta/main.yml"))["galaxy_info"]
    assert Version(meta["min_ansible_version"]) == Version(f"{ANSIBLE_FLOOR.major}.{ANSIBLE_FLOOR.minor}")


def test_the_runtime_pins_satisfy_the_ranges():
    ranges, pins = _pins("requirements.txt"), _pins("requirements/runtime.txt")
    for name, req in ranges.items():
        assert name in pins, f"requirements/runtime.txt does not pin {name}"
        assert req.specifier.contains(next(iter(pins[name].specifier)).version), f"{pins[name]} is outside {req}"


def test_module_docs_state_requirements_txt():
    fragment = _read("plugins/doc_fragments/requirements.py")
    for req in _pins("requirements.txt").values():
        assert f"- {req.name} {req.specifier}".replace(">=", ">= ") in fragment


def test_execution_environment_files_exist():
    ee = yaml.safe_load(_read("meta/execution-environment.yml"))["dependencies"]
    assert (TOP / ee["python"]).is_file() and (TOP / ee["system"]).is_file()
