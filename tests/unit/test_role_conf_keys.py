# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The role's lists of aws_balancer.conf keys agree with the conf's schema (_conf.conf_keys()).

The keys are listed in three more places: the role's template
(``roles/balancer/templates/aws_balancer.conf.j2``), its argument specs (each
conf variable's description starts ``C([SECTION] key)``) and its defaults. A
key added to the schema and forgotten in the role, or left in the role after
it left the schema, fails here with the file and the key.
"""
from __future__ import annotations

import pathlib
import re

import pytest
import yaml

from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._conf import conf_keys

TOP = pathlib.Path(__file__).resolve().parents[2]
ROLE = TOP / "roles" / "balancer"
TEMPLATE = "roles/balancer/templates/aws_balancer.conf.j2"
SPECS = "roles/balancer/meta/argument_specs.yml"
DEFAULTS = "roles/balancer/defaults/main.yml"
SECTIONS = ("MASTER", "SLAVE")

_SECTION = re.compile(r"^\[([A-Z ]+)\]\s*$")
_ENTRY = re.compile(r"^\{\{ entry\('(\w+)', (\w+)\) \}\}\s*$")
_DESCRIBED = re.compile(r"^C\(\[(MASTER|SLAVE)\] (\w+)\)")


def template_keys() -> dict[str, dict[str, str]]:
    """section -> {key: variable}, in the template's order."""
    found: dict[str, dict[str, str]] = {section: {} for section in SECTIONS}
    section = None
    for line in (TOP / TEMPLATE).read_text(encoding="utf-8").splitlines():
        header = _SECTION.match(line)
        if header:
            section = header.group(1)
            continue
        entry = _ENTRY.match(line)
        if entry:
            assert section in found, f"{TEMPLATE}: entry('{entry.group(1)}') outside [MASTER] and [SLAVE]"
            found[section][entry.group(1)] = entry.group(2)
    return found


def spec_options() -> dict[str, dict]:
    return yaml.safe_load((TOP / SPECS).read_text(encoding="utf-8"))["argument_specs"]["main"]["options"]


def spec_keys() -> dict[str, dict[str, str]]:
    """section -> {key: variable} from the argument specs' ``C([SECTION] key)`` descriptions."""
    found: dict[str, dict[str, str]] = {section: {} for section in SECTIONS}
    for variable, spec in spec_options().items():
        description = spec.get("description", "")
        first = description[0] if isinstance(description, list) else description
        described = _DESCRIBED.match(first)
        if described:
            found[described.group(1)][described.group(2)] = variable
    return found


def _differences(where: str, section: str, have: list[str], want: list[str]) -> list[str]:
    problems = [f"{where}: [{section}] {key} is missing (it is in plugins/module_utils/_conf.py)" for key in want if key not in have]
    problems += [f"{where}: [{section}] {key} is not a key of the conf (plugins/module_utils/_conf.py)" for key in have if key not in want]
    if not problems and have != want:
        problems.append(f"{where}: [{section}] keys are not in the schema's order: {' '.join(want)}")
    return problems


@pytest.mark.parametrize("section", SECTIONS)
def test_the_template_writes_every_key_of_the_schema(section: str) -> None:
    problems = _differences(TEMPLATE, section, list(template_keys()[section]), list(conf_keys()[section]))
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("section", SECTIONS)
def test_the_argument_specs_document_every_key_of_the_schema(section: str) -> None:
    problems = _differences(SPECS, section, sorted(spec_keys()[section]), sorted(conf_keys()[section]))
    assert not problems, "\n".join(problems)


def _derived_from(private: str, public: str) -> bool:
    """True when the role defines ``private`` (vars/ or a set_fact in tasks/) from ``public``."""
    pattern = re.compile(rf"^(\s*){re.escape(private)}:.*(?:\n(?:\1\s+.*|\s*))*", re.M)
    for path in [*ROLE.glob("vars/*.yml"), *ROLE.glob("tasks/*.yml")]:
        for definition in pattern.finditer(path.read_text(encoding="utf-8")):
            if re.search(rf"\b{re.escape(public)}\b", definition.group(0)):
                return True
    return False


@pytest.mark.parametrize("section", SECTIONS)
def test_each_key_is_written_from_its_documented_variable(section: str) -> None:
    documented = spec_keys()[section]
    defaults = yaml.safe_load((TOP / DEFAULTS).read_text(encoding="utf-8"))
    problems = []
    for key, variable in template_keys()[section].items():
        public = documented.get(key)
        if public is None:
            continue  # reported by the test above
        if variable != public and not (variable.startswith("_") and _derived_from(variable, public)):
            problems.append(f"{TEMPLATE}: [{section}] {key} is written from {variable}, not from {public} ({SPECS})")
        if public not in defaults:
            problems.append(f"{DEFAULTS}: {public} ([{section}] {key}) has no default")
    assert not problems, "\n".join(problems)


def test_defaults_and_argument_specs_name_the_same_variables() -> None:
    options, defaults = set(spec_options()), set(yaml.safe_load((TOP / DEFAULTS).read_text(encoding="utf-8")))
    problems = [f"{DEFAULTS}: {name} is not in {SPECS}" for name in sorted(defaults - options)]
    problems += [f"{SPECS}: {name} has no default in {DEFAULTS}" for name in sorted(options - defaults)]
    assert not problems, "\n".join(problems)
