# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What EC2's error codes mean (plugins/module_utils/_ec2_errors.py): every declared code, one property each.

Stdlib only: no botocore, no stubs.
"""

from __future__ import annotations

import pytest

from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._ec2_errors import (
    CAPACITY,
    CAPACITY_ERROR_CODES,
    RESOURCES,
    CapacityError,
    Codes,
    EC2Error,
    api_error,
)

MEANINGS = ("missing", "already_exists", "stale_reference", "in_use", "capacity")

# code -> the properties that are true for it (all others false)
TABLE: dict[str | None, set[str]] = {
    # images
    "InvalidAMIID.NotFound": {"missing", "stale_reference"},
    "InvalidAMIID.Malformed": {"missing", "stale_reference"},
    "InvalidAMIID.Unavailable": {"missing", "stale_reference"},
    "InvalidAMIName.NotFound": {"missing", "stale_reference"},
    "InvalidAMIName": {"stale_reference"},  # resolve_image's "No image given"
    # launch templates
    "InvalidLaunchTemplateId.NotFound": {"missing", "stale_reference"},
    "InvalidLaunchTemplateName.NotFoundException": {"missing", "stale_reference"},
    "InvalidLaunchTemplateId.VersionNotFound": {"missing", "stale_reference"},
    "InvalidLaunchTemplateName.AlreadyExistsException": {"already_exists", "stale_reference"},
    "InvalidLaunchTemplateId.Malformed": {"stale_reference"},
    # security groups and their rules
    "InvalidGroup.NotFound": {"missing", "stale_reference"},
    "InvalidGroupId.NotFound": {"missing", "stale_reference"},
    "InvalidGroup.Duplicate": {"already_exists", "stale_reference"},
    "InvalidGroupId.Malformed": {"stale_reference"},
    "DependencyViolation": {"in_use"},
    "InvalidPermission.Duplicate": {"already_exists"},
    "InvalidPermission.NotFound": {"missing"},
    # subnets
    "InvalidSubnetID.NotFound": {"missing", "stale_reference"},
    "InvalidSubnetID.Malformed": {"stale_reference"},
    # capacity, price, quota
    **{code: {"capacity"} for code in CAPACITY_ERROR_CODES},
    # nothing at all
    "UnauthorizedOperation": set(),
    "RequestLimitExceeded": set(),
    "InvalidParameterValue": set(),
    "InvalidInstanceID.NotFound": set(),  # terminate() never asks EC2 about an id it does not own
    "EndpointConnectionError": set(),
    "Unknown": set(),
    "": set(),
    None: set(),
}


@pytest.mark.parametrize("code, true", TABLE.items(), ids=[str(c) for c in TABLE])
def test_every_code_means_what_is_declared(code: str | None, true: set[str]) -> None:
    exc = EC2Error("Failed to do something", code=code)
    assert {meaning for meaning in MEANINGS if getattr(exc, meaning)} == true


def test_every_declared_code_and_family_is_in_the_table() -> None:
    declared = [getattr(r, meaning) for r in RESOURCES for meaning in MEANINGS if meaning != "capacity"] + [CAPACITY]
    for codes in declared:
        for exact in codes.exact:
            assert exact in TABLE, exact
        for family in codes.families:
            assert any(isinstance(c, str) and c.startswith(family) for c in TABLE), family


def test_a_code_is_missing_or_already_there_never_both() -> None:
    for resource in RESOURCES:
        for code in TABLE:
            assert not (code in resource.missing and code in resource.already_exists), (resource.resource, code)


# The rules the adapter and the daemon matched by hand before they were declared: kept as they were.
OLD_RULES = {
    "stale_reference": lambda c: c.startswith(("InvalidGroup", "InvalidLaunchTemplate", "InvalidAMI", "InvalidSubnet")),
    "capacity": lambda c: c in CAPACITY_ERROR_CODES,
}


@pytest.mark.parametrize("meaning", OLD_RULES)
def test_the_declared_rules_are_the_hand_written_ones(meaning: str) -> None:
    for code in TABLE:
        assert getattr(EC2Error("", code=code), meaning) == OLD_RULES[meaning](code or ""), code


@pytest.mark.parametrize(
    "patterns, inside, outside",
    [
        (("A.B",), ["A.B"], ["A", "A.B.C", "a.b", ""]),
        (("A*",), ["A", "A.B", "AB"], ["B", "", "a"]),
        (("A.B", "C*"), ["A.B", "C", "C.D"], ["A", "B"]),
        ((), [], ["A", ""]),
    ],
)
def test_codes_match_exactly_or_by_family(patterns: tuple[str, ...], inside: list[str], outside: list[str]) -> None:
    codes = Codes.of(*patterns)
    assert all(code in codes for code in inside)
    assert not any(code in codes for code in outside)
    assert None not in codes
    assert sorted(codes.patterns) == sorted(patterns)


def test_union_of_codes() -> None:
    both = Codes.of("A.B") | Codes.of("C*")
    assert "A.B" in both and "C.D" in both and "A" not in both


@pytest.mark.parametrize(
    "code, cls",
    [
        ("InsufficientInstanceCapacity", CapacityError),
        ("VcpuLimitExceeded", CapacityError),
        ("InvalidGroup.NotFound", EC2Error),
    ],
)
def test_api_error_names_the_action_and_is_a_capacity_error_when_it_is_one(code: str, cls: type) -> None:
    exc = api_error("launch 2 slave(s)", code, "the message")
    assert type(exc) is cls  # pylint: disable=unidiomatic-typecheck  # exactly, not a subclass
    assert str(exc) == f"Failed to launch 2 slave(s): {code}: the message"
    assert exc.code == code
    assert exc.capacity == (cls is CapacityError)
