# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What EC2's error codes mean to the balancer, declared once per resource.

The shape of amazon.aws ``plugins/module_utils/errors.py`` (``AWSErrorHandler``:
one declaration per resource of the codes that mean "not there"), copied rather
than imported: the daemon runs without ansible-core. Callers ask the error, not
the code: ``exc.missing``, ``exc.already_exists``, ``exc.stale_reference``,
``exc.in_use``, ``exc.capacity``. A code is matched one way only (:class:`Codes`:
exact, or a ``Family*`` prefix). EC2's codes name their resource
(``InvalidAMIID.NotFound``, ``InvalidGroup.Duplicate``), so one code cannot mean
"missing" for two kinds of resource and the properties need no resource.

Stdlib only: tested in tests/unit/plugins/module_utils/test_ec2_errors.py.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass


@dataclass(frozen=True)
class Codes:
    """A set of error codes: exact ones, and families given as ``"Prefix*"``.

    Families keep what the adapter always matched by prefix (every
    ``InvalidAMIID.*`` code is "this image is not there").
    """

    exact: frozenset[str] = frozenset()
    families: tuple[str, ...] = ()

    @classmethod
    def of(cls, *patterns: str) -> Codes:
        return cls(
            frozenset(p for p in patterns if not p.endswith("*")),
            tuple(p[:-1] for p in patterns if p.endswith("*")),
        )

    def __contains__(self, code: object) -> bool:
        return isinstance(code, str) and (code in self.exact or code.startswith(self.families))

    def __or__(self, other: Codes) -> Codes:
        return Codes(self.exact | other.exact, self.families + other.families)

    @property
    def patterns(self) -> tuple[str, ...]:
        """The declaration back, families with their ``*``."""
        return tuple(sorted(self.exact)) + tuple(f"{p}*" for p in self.families)


NONE = Codes()


@dataclass(frozen=True)
class ResourceErrors:
    """What EC2's codes mean for one kind of resource.

    - ``missing``: it is not there (a lookup finds nothing, a delete has nothing to do);
    - ``already_exists``: a create found it made already (a race, or our earlier run);
    - ``stale_reference``: a launch names it and it is gone or unusable: resolve it anew;
    - ``in_use``: it cannot be deleted yet (instances still use it).
    """

    resource: str
    missing: Codes = NONE
    already_exists: Codes = NONE
    stale_reference: Codes = NONE
    in_use: Codes = NONE


IMAGE = ResourceErrors(
    "image",
    missing=Codes.of("InvalidAMIID*", "InvalidAMIName.NotFound"),  # the latter: resolve_image's, for a name
    stale_reference=Codes.of("InvalidAMI*"),
)
LAUNCH_TEMPLATE = ResourceErrors(
    "launch template",
    missing=Codes.of(
        "InvalidLaunchTemplateId.NotFound",
        "InvalidLaunchTemplateName.NotFoundException",
        "InvalidLaunchTemplateId.VersionNotFound",
    ),
    already_exists=Codes.of("InvalidLaunchTemplateName.AlreadyExistsException"),
    stale_reference=Codes.of("InvalidLaunchTemplate*"),
)
SECURITY_GROUP = ResourceErrors(
    "security group",
    missing=Codes.of("InvalidGroup.NotFound", "InvalidGroupId.NotFound"),
    already_exists=Codes.of("InvalidGroup.Duplicate"),
    stale_reference=Codes.of("InvalidGroup*"),
    in_use=Codes.of("DependencyViolation"),
)
INGRESS_RULE = ResourceErrors(
    "security group rule",
    missing=Codes.of("InvalidPermission.NotFound"),
    already_exists=Codes.of("InvalidPermission.Duplicate"),
)
SUBNET = ResourceErrors(
    "subnet", missing=Codes.of("InvalidSubnetID.NotFound"), stale_reference=Codes.of("InvalidSubnet*")
)

RESOURCES: tuple[ResourceErrors, ...] = (IMAGE, LAUNCH_TEMPLATE, SECURITY_GROUP, INGRESS_RULE, SUBNET)

#: Error codes that mean "not now": no capacity, price below the spot price,
#: account limits. The caller logs them and tries again on a later poll.
CAPACITY_ERROR_CODES = frozenset(
    {
        "InsufficientInstanceCapacity",
        "InsufficientCapacity",
        "InsufficientHostCapacity",
        "InsufficientReservedInstanceCapacity",
        "InsufficientFreeAddressesInSubnet",
        "UnfulfillableCapacity",
        "SpotMaxPriceTooLow",
        "MaxSpotInstanceCountExceeded",
        "MaxSpotFleetRequestCountExceeded",
        "InstanceLimitExceeded",
        "VcpuLimitExceeded",
    }
)
CAPACITY = Codes(CAPACITY_ERROR_CODES)


def _union(meaning: str) -> Codes:
    codes = NONE
    for resource in RESOURCES:
        codes = codes | getattr(resource, meaning)
    return codes


MISSING = _union("missing")
ALREADY_EXISTS = _union("already_exists")
STALE_REFERENCE = _union("stale_reference")
IN_USE = _union("in_use")


class EC2Error(Exception):
    """An EC2 call failed. ``code`` is the AWS error code (or the botocore
    exception's class name for errors without one, e.g. a connection error).

    What the code means is asked, not matched: ``exc.missing`` and so on
    (declared above, per resource).
    """

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code

    @property
    def missing(self) -> bool:
        return self.code in MISSING

    @property
    def already_exists(self) -> bool:
        return self.code in ALREADY_EXISTS

    @property
    def stale_reference(self) -> bool:
        """Something a launch names (image, template, group, subnet) is gone: resolve it again."""
        return self.code in STALE_REFERENCE

    @property
    def in_use(self) -> bool:
        return self.code in IN_USE

    @property
    def capacity(self) -> bool:
        """No capacity, price or quota now: try again on a later poll."""
        return self.code in CAPACITY


class CapacityError(EC2Error):
    """Nothing could be launched for lack of capacity, price or quota.

    Expected now and then on the spot market; the caller logs it and tries
    again on a later poll. ``errors`` holds every (code, message) EC2 gave.
    """

    def __init__(self, message: str, code: str | None = None, errors: t.Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(message, code)
        self.errors = tuple(errors)


def api_error(action: str, code: str, message: str) -> EC2Error:
    """The error for a failed call: "Failed to <action>: <code>: <message>", a CapacityError when it is one."""
    cls = CapacityError if code in CAPACITY else EC2Error
    return cls(f"Failed to {action}: {code}: {message}", code=code)
