# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The one EC2 adapter: the balancer's slaves, launch template and security group.

Everything the balancer, the modules and the playbooks do on EC2 goes through
:class:`EC2`. It only ever describes, changes or deletes resources carrying the
tag ``gbrowse-aws:balancer-id`` with its own balancer id, and it tags every
resource it creates at creation time, so a restarted balancer finds its fleet
again from tags alone.

This module is the I/O: one boto3 call after another. What it sends and what
it makes of the answers is pure and lives in ``_ec2_data.py``; what EC2's error
codes mean is declared once in ``_ec2_errors.py``. The types its methods take
and return (:class:`Instance`, :class:`LaunchSpec`, :class:`EC2Error`, ...) are
importable from here too.

Cost per call, in EC2 API requests (``EC2.calls`` counts them):

- :meth:`EC2.describe_fleet`: one ``DescribeInstances`` for up to 1000 slaves.
- :meth:`EC2.ensure_launch_template`: none when the spec is the one already
  ensured by this object; otherwise one or two describes (no DescribeImages
  for an image :meth:`EC2.resolve_image` found), plus a create or a new
  version and a default switch only when the template data changed.
- :meth:`EC2.launch`: one ``CreateFleet`` (type ``instant``: the answer holds the
  instances or the errors, no request stays open to pile up).
- :meth:`EC2.spot_price`: one ``DescribeSpotPriceHistory`` (a page per 1000
  prices) every SPOT_PRICE_MAX_AGE seconds at most; none in between.
- a new launch template version also prunes the old ones (those the
  ``DescribeLaunchTemplateVersions`` it made anyway listed): one
  ``DeleteLaunchTemplateVersions`` per 200, none when none is left to prune.
- :meth:`EC2.terminate`: one ``TerminateInstances`` per 1000, plus one describe
  unless the last call was this object's :meth:`EC2.describe_fleet` and it saw
  every id (a poll describes once, then terminates from what it saw).

Retries are botocore's ("standard" mode, jittered exponential backoff on
throttling, 5xx and connection errors; see :func:`make_client`); nothing here
loops by hand. API errors become :class:`EC2Error` (or :class:`CapacityError`)
whose message names the failed action.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import json
import os
import re
import subprocess
import sys
import time
import typing as t
import uuid

try:
    import boto3
    import botocore.session
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError
except ImportError:  # pragma: no cover - reported when used
    boto3 = None
    HAS_BOTO3 = False
else:
    HAS_BOTO3 = True

from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._ec2_data import (
    BALANCER_ID_PATTERN,
    BALANCER_TAG,
    FLEET_STATES,
    GENERATION_TAG,
    LIFECYCLE_TAG,
    ON_DEMAND_VALUE,
    Image,
    Instance,
    LaunchResult,
    LaunchSpec,
    Subnet,
    carries,
    comparable,
    fleet_of,
    fleet_request,
    highest_spot_price,
    image_of,
    ingress_rules,
    ip_permissions,
    launch_result,
    newest_image,
    our_tags,
    permissions_of,
    subnet_of,
    tag_filter,
    template_data,
    template_vanished,
    versions_to_prune,
)
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._ec2_errors import (
    LAUNCH_TEMPLATE,
    CapacityError,
    EC2Error,
    api_error,
)
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._url import NOT_HTTP_URL, is_http_url

__all__ = [  # the facade's vocabulary, re-exported for its callers
    "BALANCER_TAG",
    "EC2",
    "GENERATION_TAG",
    "LIFECYCLE_TAG",
    "ON_DEMAND_VALUE",
    "CapacityError",
    "EC2Error",
    "Image",
    "Instance",
    "LaunchResult",
    "LaunchSpec",
    "Subnet",
    "aws_session",
    "check_endpoint_url",
    "make_client",
    "resolved_region",
]

USER_AGENT = "gbrowse_aws/0.1"
DESCRIBE_PAGE_SIZE = 1000  # the most DescribeInstances returns per call
TERMINATE_BATCH = 1000  # the most TerminateInstances takes per call
DEFAULT_MAX_ATTEMPTS = 8

#: How long terminate() trusts the fleet describe_fleet() just returned (when no
#: other call came between and it holds every id asked): a poll's look and its
#: terminations are seconds apart.
FLEET_VIEW_MAX_AGE = 60.0

#: How long a spot price is trusted (seconds): prices move over hours, a poll is seconds.
SPOT_PRICE_MAX_AGE = 600.0

#: Launch template versions kept besides the default: the one before it, to go back to by hand.
TEMPLATE_VERSIONS_KEPT = 1
#: The most DeleteLaunchTemplateVersions takes per call.
DELETE_VERSIONS_BATCH = 200


#: The EC2 API operations the facade calls (``self.client.<name>``, paginators included):
#: the clients make_client() builds know only these (see :func:`_service_model`).
#: tests/unit/plugins/module_utils/test_ec2_unit.py checks this list against the code.
OPERATIONS = (
    "AuthorizeSecurityGroupIngress",
    "CreateFleet",
    "CreateLaunchTemplate",
    "CreateLaunchTemplateVersion",
    "CreateSecurityGroup",
    "DeleteLaunchTemplate",
    "DeleteLaunchTemplateVersions",
    "DeleteSecurityGroup",
    "DescribeImages",
    "DescribeInstances",
    "DescribeLaunchTemplateVersions",
    "DescribeLaunchTemplates",
    "DescribeSecurityGroups",
    "DescribeSpotPriceHistory",
    "DescribeSubnets",
    "ModifyLaunchTemplate",
    "RevokeSecurityGroupIngress",
    "TerminateInstances",
)

# Run by _service_model() in a child Python: loads botocore's EC2 model, keeps the
# operations named in argv and the shapes they reach, drops the documentation.
_PRUNE_MODEL = r"""
import json, os, sys
from botocore.loaders import create_loader
model = create_loader(os.environ.get("AWS_DATA_PATH")).load_service_model("ec2", "service-2")
shapes, wanted = model["shapes"], sys.argv[1:]
def bare(node):
    if isinstance(node, dict):
        return {k: bare(v) for k, v in node.items() if k != "documentation"}
    if isinstance(node, list):
        return [bare(v) for v in node]
    return node
keep, todo = set(), []
for name in wanted:
    op = model["operations"][name]
    todo += [op[k]["shape"] for k in ("input", "output") if k in op] + [e["shape"] for e in op.get("errors", ())]
while todo:
    name = todo.pop()
    if name not in keep:
        keep.add(name)
        shape = shapes[name]
        todo += [m["shape"] for m in shape.get("members", {}).values()]
        todo += [shape[k]["shape"] for k in ("member", "key", "value") if k in shape]
model["operations"] = {k: bare(model["operations"][k]) for k in wanted}
model["shapes"] = {k: bare(shapes[k]) for k in sorted(keep)}
json.dump(model, sys.stdout)
"""


@functools.lru_cache(maxsize=4)
def _service_model(operations: tuple[str, ...]) -> dict[str, t.Any] | None:
    """botocore's EC2 model cut down to ``operations``, loaded by a child Python; None if that fails.

    The whole model is about 830 operations: parsed, it holds 15-20 MB for the
    daemon's life and briefly 30 (bench/README.md, "Footprint"); the facade
    calls 18. Parsing it in a child (once per process, ~0.3 s of CPU) keeps
    all of that out of this process. Clients share the result, as they share
    botocore's own cached models.
    """
    try:
        child = subprocess.run(  # pylint: disable=ansible-bad-function  # the daemon's runtime, not a module
            [sys.executable, "-I", "-c", _PRUNE_MODEL, *operations],
            capture_output=True,
            timeout=120,
            check=True,
            stdin=subprocess.DEVNULL,
        )
        model = json.loads(child.stdout)
    except (OSError, subprocess.SubprocessError, ValueError):
        return None  # the whole model then: more memory, same client
    return model if isinstance(model, dict) and set(operations) <= set(model.get("operations", ())) else None


#: The region when nothing names one (conf, instance metadata, environment, AWS config): see region_and_source.
DEFAULT_REGION = "us-east-1"

#: Endpoint variables botocore reads itself; checked first so that a typo is one clear line.
ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_EC2", "AWS_ENDPOINT_URL_SQS")


def check_endpoint_url(url: str, name: str = "endpoint_url") -> str:
    """``url`` when it is an http(s) URL with a host (:mod:`._url`'s rule); EC2Error naming ``name`` otherwise."""
    if not is_http_url(url):
        raise EC2Error(f"{name}: {url!r} {NOT_HTTP_URL}", code="InvalidEndpoint")
    return url


def aws_session(environ: t.Mapping[str, str] | None = None, profile: str | None = None) -> t.Any:
    """boto3's Session as every AWS tool builds it (AWS_PROFILE, AWS_CONFIG_FILE, ~/.aws/config), checked.

    A missing profile, an unparsable config file or a malformed endpoint
    variable raises EC2Error with one line, before any AWS request.
    """
    if not HAS_BOTO3:
        raise EC2Error("boto3 is required for EC2 (pip install boto3)", code="MissingBoto3")
    environ = os.environ if environ is None else environ
    for name in ENDPOINT_VARIABLES:
        if environ.get(name):
            check_endpoint_url(environ[name], name)
    try:
        session = boto3.session.Session(profile_name=profile)
        session.region_name  # pylint: disable=pointless-statement  # parses the config file now
        session._session.full_config  # pylint: disable=protected-access,pointless-statement
    except BotoCoreError as exc:  # ProfileNotFound, ConfigParseError, ...
        raise EC2Error(f"AWS configuration: {exc}", code=type(exc).__name__) from None
    return session


def region_and_source(
    preferred: str | None = None,
    environ: t.Mapping[str, str] | None = None,
    session: t.Any = None,
    *,
    master_region: str | None = None,
) -> tuple[str, str]:
    """The region to work in and where it came from: the one rule for the daemon, the modules and the sync.

    In order: ``preferred`` (the conf's ``[SLAVE] region``), ``master_region``
    (the master's own, from instance metadata when it runs on EC2: slaves
    near their master), ``AWS_REGION``, the AWS configuration as boto3
    resolves it (``AWS_DEFAULT_REGION``, then the ``region`` of the profile,
    AWS_PROFILE or default, in ``~/.aws/config``), else us-east-1. The source
    is one of ``conf``, ``instance metadata``, ``AWS_REGION``, ``AWS config``,
    ``default``. A broken AWS configuration raises EC2Error (see
    :func:`aws_session`), only when it is consulted.
    """
    environ = os.environ if environ is None else environ
    if preferred:
        return preferred, "conf"
    if master_region:
        return master_region, "instance metadata"
    if environ.get("AWS_REGION"):
        return environ["AWS_REGION"], "AWS_REGION"
    session = session or aws_session(environ)
    if session.region_name:
        return session.region_name, "AWS config"
    return DEFAULT_REGION, "default"


def resolved_region(
    preferred: str | None = None,
    environ: t.Mapping[str, str] | None = None,
    session: t.Any = None,
    *,
    master_region: str | None = None,
) -> str:
    """The region of :func:`region_and_source`, without its source."""
    return region_and_source(preferred, environ, session, master_region=master_region)[0]


def make_client(
    region: str | None,
    *,
    access_key: str | None = None,
    secret_key: str | None = None,
    session_token: str | None = None,
    profile: str | None = None,
    endpoint_url: str | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    connect_timeout: float = 5.0,
    read_timeout: float = 30.0,
    service: str = "ec2",
    operations: t.Sequence[str] | None = OPERATIONS,
) -> t.Any:
    """An EC2 client (or another ``service``'s: the interruption queue's SQS) from the standard boto3 credential chain.

    An EC2 client knows only ``operations`` (default: the facade's :data:`OPERATIONS`;
    None: every EC2 operation), which keeps the daemon's memory small.

    Explicit keys win over the chain (environment, shared config/profile, the
    instance's IAM role through IMDSv2). ``endpoint_url`` None lets botocore
    apply ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_EC2`` (``_SQS``) itself. Retries:
    botocore "standard" mode, ``max_attempts`` tries in all, jittered
    exponential backoff on throttling, 5xx and connection errors.
    """
    if not HAS_BOTO3:
        raise EC2Error("boto3 is required for EC2 (pip install boto3)", code="MissingBoto3")
    config = Config(
        retries={"mode": "standard", "total_max_attempts": max_attempts},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        user_agent_extra=USER_AGENT,
    )
    core = botocore.session.get_session()
    model = _service_model(tuple(operations)) if operations and service == "ec2" else None
    if model is not None:
        loader = core.get_component("data_loader")
        whole = loader.load_service_model

        def load_service_model(service_name: str, type_name: str, api_version: str | None = None) -> t.Any:
            if (service_name, type_name) == ("ec2", "service-2"):
                return model
            return whole(service_name, type_name, api_version)

        loader.load_service_model = load_service_model
    try:
        session = boto3.session.Session(
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            aws_session_token=session_token,
            profile_name=profile,
            region_name=region,
            botocore_session=core,
        )
        return session.client(service, endpoint_url=endpoint_url, config=config)
    except BotoCoreError as exc:  # NoRegionError, ProfileNotFound, ...
        raise EC2Error(f"Failed to create an {service.upper()} client: {exc}", code=type(exc).__name__) from exc


@contextlib.contextmanager
def _api(action: str) -> t.Iterator[None]:
    """Turn botocore errors into EC2Error("Failed to <action>: <code>: <message>")."""
    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise api_error(action, str(error.get("Code", "Unknown")), str(error.get("Message", ""))) from exc
    except BotoCoreError as exc:
        raise EC2Error(f"Failed to {action}: {exc}", code=type(exc).__name__) from exc


class EC2:
    """The balancer's view of EC2, limited to resources tagged with its id."""

    def __init__(self, client: t.Any, balancer_id: str) -> None:
        if not HAS_BOTO3:
            raise EC2Error("boto3 is required for EC2 (pip install boto3)", code="MissingBoto3")
        if not isinstance(balancer_id, str) or not BALANCER_ID_PATTERN.fullmatch(balancer_id):
            raise ValueError(f"invalid balancer id {balancer_id!r}: use 1-64 of A-Z a-z 0-9 . _ -")
        self.client = client
        self.balancer_id = balancer_id
        #: API calls made on the client since this object was made, by operation name
        #: (counted by a botocore event hook; paging counts one call per page).
        self.calls: collections.Counter[str] = collections.Counter()
        #: HTTP attempts, retries included, by operation name.
        self.attempts: collections.Counter[str] = collections.Counter()
        # before-parameter-build fires once per API call, even when another
        # handler (a Stubber, a cache) answers the call without sending it.
        client.meta.events.register_first("before-parameter-build.ec2", self._count_call)
        client.meta.events.register_first("before-send.ec2", self._count_attempt)
        self._call_number = 0  # every call, never reset (``calls`` may be cleared by its readers)
        self._fleet: tuple[int, float, dict[str, Instance]] | None = None  # (call number, when, ours by id)
        self._template: tuple[LaunchSpec, str, int] | None = None  # (spec, template id, version)
        self._images: dict[str, Image] = {}
        self._group: tuple[tuple, str] | None = None  # (arguments, group id)
        self._prices: dict[tuple, tuple[float, float | None]] = {}  # (types, zones) -> (when, price)
        self._zones: dict[str, str | None] = {}  # subnet id -> its zone
        #: Housekeeping that failed without failing the call it came with (pruning
        #: old template versions): messages for the caller to log, then clear.
        self.warnings: list[str] = []

    # -- bookkeeping ------------------------------------------------------

    def _count_call(self, model: t.Any = None, **kwargs: t.Any) -> None:
        self.calls[getattr(model, "name", "?")] += 1
        self._call_number += 1

    def _count_attempt(self, event_name: str = "", **kwargs: t.Any) -> None:
        self.attempts[event_name.rsplit(".", 1)[-1]] += 1

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    @property
    def name(self) -> str:
        """Name of the launch template and security group of this balancer."""
        return f"gbrowse-slave-{self.balancer_id}"

    # -- the fleet --------------------------------------------------------

    def describe_fleet(self) -> list[Instance]:
        """Our instances that are not terminated, oldest first. One call per 1000."""
        with _api("describe instances"):
            pages = self.client.get_paginator("describe_instances").paginate(
                Filters=[tag_filter(self.balancer_id), {"Name": "instance-state-name", "Values": list(FLEET_STATES)}],
                PaginationConfig={"PageSize": DESCRIBE_PAGE_SIZE},
            )
            instances = fleet_of(pages, self.balancer_id)
        self._fleet = (self._call_number, time.monotonic(), {i.id: i for i in instances})
        return instances

    def _fleet_knowing(self, instance_ids: t.Sequence[str]) -> dict[str, Instance]:
        """Our fleet by id: what describe_fleet() just returned when it knows every one of
        ``instance_ids`` and no call came since; else described now."""
        if self._fleet is not None:
            number, when, fleet = self._fleet
            fresh = number == self._call_number and time.monotonic() - when < FLEET_VIEW_MAX_AGE
            if fresh and all(i in fleet for i in instance_ids):
                return fleet
        return {i.id: i for i in self.describe_fleet()}

    def terminate(self, instance_ids: t.Iterable[str]) -> list[str]:
        """Terminate those of ``instance_ids`` that are ours and not already going.

        Anything else (foreign, untagged, unknown, already shutting down) is
        left alone. Returns the ids actually asked to terminate. Which are ours
        is asked with one describe, unless the last call was describe_fleet()
        and its answer holds them all: a poll that chose them from its look at
        the fleet does not describe it again.
        """
        wanted = list(dict.fromkeys(instance_ids))
        if not wanted:
            return []
        fleet = self._fleet_knowing(wanted)
        victims = [i for i in wanted if i in fleet and fleet[i].state != "shutting-down"]
        for start in range(0, len(victims), TERMINATE_BATCH):
            with _api("terminate instances"):
                self.client.terminate_instances(InstanceIds=victims[start:start + TERMINATE_BATCH])
        return victims

    # -- images and subnets -----------------------------------------------

    def resolve_image(self, image_id_or_name: str, *, owners: t.Sequence[str] | None = ("self",)) -> Image:
        """An AMI by id (``ami-...``), or the newest available one whose name contains the text.

        Name lookups search ``owners`` (default: this account's own images, so a
        stranger's public AMI with a matching name is never picked); pass
        ``owners=None`` to search every image this account may launch. The
        image found is remembered for the launch template (until forget()).
        """
        text = (image_id_or_name or "").strip()
        if not text:
            raise EC2Error("No image given", code="InvalidAMIName")
        if re.fullmatch(r"ami-[0-9a-f]+", text):
            try:
                with _api(f"describe image {text}"):
                    images = self.client.describe_images(ImageIds=[text])["Images"]
            except EC2Error as exc:
                if exc.missing:
                    raise EC2Error(f"Image {text} not found", code=exc.code) from exc
                raise
            if not images:
                raise EC2Error(f"Image {text} not found", code="InvalidAMIID.NotFound")
            image = image_of(images[0])
        else:
            params: dict[str, t.Any] = {
                "Filters": [
                    {"Name": "name", "Values": [f"*{text}*"]},
                    {"Name": "state", "Values": ["available"]},
                ]
            }
            if owners:
                params["Owners"] = list(owners)
            with _api(f"describe images named like {text!r}"):
                images = self.client.describe_images(**params)["Images"]
            if not images:
                where = f" owned by {', '.join(owners)}" if owners else ""
                raise EC2Error(
                    f"No available image whose name contains {text!r}{where}", code="InvalidAMIName.NotFound"
                )
            image = newest_image(images)
        self._images[image.id] = image
        return image

    def describe_subnet(self, subnet_id: str) -> Subnet:
        """A subnet's VPC and zone (the security group must live in the slaves' VPC)."""
        with _api(f"describe subnet {subnet_id}"):
            subnets = self.client.describe_subnets(SubnetIds=[subnet_id])["Subnets"]
        if not subnets:
            raise EC2Error(f"Subnet {subnet_id} not found", code="InvalidSubnetID.NotFound")
        return subnet_of(subnets[0])

    def subnet_vpc(self, subnet_id: str) -> str:
        """The VPC of ``subnet_id``."""
        return self.describe_subnet(subnet_id).vpc_id

    def find_security_group(self, name_or_id: str, subnet_id: str | None = None) -> str:
        """The id of an existing security group given in the conf (``security_group``).

        An ``sg-...`` id is checked to exist; a name is looked up in the VPC of
        ``subnet_id`` when given, else everywhere (and must then be unique).
        The group is only referenced, never changed: it need not carry our tag.
        """
        text = (name_or_id or "").strip()
        if re.fullmatch(r"sg-[0-9a-f]+", text):
            try:
                with _api(f"describe security group {text}"):
                    groups = self.client.describe_security_groups(GroupIds=[text])["SecurityGroups"]
            except EC2Error as exc:
                if exc.missing:
                    raise EC2Error(f"Security group {text} not found", code=exc.code) from exc
                raise
            if not groups:
                raise EC2Error(f"Security group {text} not found", code="InvalidGroup.NotFound")
            return groups[0]["GroupId"]
        filters = [{"Name": "group-name", "Values": [text]}]
        where = ""
        if subnet_id:
            vpc_id = self.subnet_vpc(subnet_id)
            filters.append({"Name": "vpc-id", "Values": [vpc_id]})
            where = f" in {vpc_id}"
        with _api(f"describe security group {text!r}"):
            groups = self.client.describe_security_groups(Filters=filters)["SecurityGroups"]
        if not groups:
            raise EC2Error(f"No security group named {text!r}{where}", code="InvalidGroup.NotFound")
        if len(groups) > 1:
            ids = ", ".join(sorted(g["GroupId"] for g in groups))
            raise EC2Error(
                f"Several security groups are named {text!r} ({ids}): give its id or a subnet", code="Ambiguous"
            )
        return groups[0]["GroupId"]

    # -- the launch template ----------------------------------------------

    def template_data(self, spec: LaunchSpec, image: Image) -> dict[str, t.Any]:
        """The launch template data for ``spec`` (``image`` is its resolved ``image_id``), tagged with our id."""
        return template_data(spec, image, self.balancer_id)

    def ensure_launch_template(self, spec: LaunchSpec) -> str:
        """The id of our launch template, holding ``spec``'s data in its default version.

        Creates the template (tagged at creation) when missing; adds a version
        and makes it the default only when the data differs from the default
        version's. Remembers the last spec: asking again with an equal spec
        makes no API call at all.
        """
        if self._template is not None and self._template[0] == spec:
            return self._template[1]
        image = self._images.get(spec.image_id) or self.resolve_image(spec.image_id)
        data = self.template_data(spec, image)
        template = self._find_template()
        if template is None:
            created = self._create_template(data)
            if created is not None:
                self._template = (spec, created[0], created[1])
                return created[0]
            template = self._find_template()  # lost a race with another balancer of the same id
            if template is None:
                raise EC2Error(
                    f"A launch template named {self.name} exists but does not carry {BALANCER_TAG}={self.balancer_id}",
                    code="InvalidLaunchTemplateName.AlreadyExistsException",
                )
        template_id = template["LaunchTemplateId"]
        # Every version (one page: pruning keeps a handful): the default's data to compare, the rest to prune.
        with _api(f"describe launch template {template_id}"):
            pages = self.client.get_paginator("describe_launch_template_versions").paginate(
                LaunchTemplateId=template_id
            )
            versions = [v for page in pages for v in page.get("LaunchTemplateVersions") or ()]
        current = next((v for v in versions if v.get("DefaultVersion")), {})
        version = int(current.get("VersionNumber", 0))
        if not current or comparable(current.get("LaunchTemplateData") or {}) != comparable(data):
            with _api(f"create a version of launch template {template_id}"):
                created_version = self.client.create_launch_template_version(
                    LaunchTemplateId=template_id, LaunchTemplateData=data, VersionDescription="gbrowse_aws slave"
                )["LaunchTemplateVersion"]
            previous, version = version, int(created_version["VersionNumber"])
            with _api(f"set the default version of launch template {template_id}"):
                self.client.modify_launch_template(LaunchTemplateId=template_id, DefaultVersion=str(version))
            self._prune_versions(template_id, versions_to_prune(versions, keep={version, previous}))
        self._template = (spec, template_id, version)
        return template_id

    def _prune_versions(self, template_id: str, doomed: t.Sequence[int]) -> list[int]:
        """Delete the ``doomed`` versions of our template (all but the new default and the one before
        it, :func:`._ec2_data.versions_to_prune`); returns those deleted. No call when there are none.

        One version piled up per conf change before. Housekeeping: a failure
        (an older IAM policy without DeleteLaunchTemplateVersions, say) only
        adds to ``warnings``; the next new version tries again.
        """
        deleted: list[int] = []
        try:
            for start in range(0, len(doomed), DELETE_VERSIONS_BATCH):
                batch = doomed[start:start + DELETE_VERSIONS_BATCH]
                with _api(f"delete old versions of launch template {template_id}"):
                    answer = self.client.delete_launch_template_versions(
                        LaunchTemplateId=template_id, Versions=[str(v) for v in batch]
                    )
                gone = answer.get("SuccessfullyDeletedLaunchTemplateVersions") or ()
                deleted += [int(v["VersionNumber"]) for v in gone]
                for failed in answer.get("UnsuccessfullyDeletedLaunchTemplateVersions") or ():
                    error = failed.get("ResponseError") or {}
                    self.warnings.append(
                        f"Could not delete version {failed.get('VersionNumber')} of launch template {template_id}: "
                        f"{error.get('Code', 'Unknown')}: {error.get('Message', '')}"
                    )
        except EC2Error as exc:
            self.warnings.append(f"Old launch template versions are kept: {exc}")
            return []
        return deleted

    @property
    def template_version(self) -> int | None:
        """The version launches use (the last ensured), None before the first ensure."""
        return self._template[2] if self._template else None

    def owns_template_or_group(self) -> bool:
        """Whether this balancer still has a launch template or a security group (two describes)."""
        return self._find_template() is not None or bool(self._find_groups())

    def _find_template(self) -> dict[str, t.Any] | None:
        with _api("describe launch templates"):
            found = self.client.describe_launch_templates(
                Filters=[tag_filter(self.balancer_id), {"Name": "launch-template-name", "Values": [self.name]}]
            )["LaunchTemplates"]
        ours = [lt for lt in found if lt.get("LaunchTemplateName") == self.name and carries(lt, self.balancer_id)]
        return ours[0] if ours else None

    def _create_template(self, data: dict[str, t.Any]) -> tuple[str, int] | None:
        """Create our template: (id, version), or None when the name is already taken."""
        try:
            with _api(f"create launch template {self.name}"):
                created = self.client.create_launch_template(
                    LaunchTemplateName=self.name,
                    VersionDescription="gbrowse_aws slave",
                    LaunchTemplateData=data,
                    TagSpecifications=[
                        {"ResourceType": "launch-template", "Tags": our_tags(self.balancer_id, name=False)}
                    ],
                )["LaunchTemplate"]
        except EC2Error as exc:
            if exc.already_exists:
                return None
            raise
        return created["LaunchTemplateId"], int(created.get("DefaultVersionNumber") or 1)

    def delete_launch_template(self) -> bool:
        """Delete our launch template. True when none of ours is left (also when there was none)."""
        with _api("describe launch templates"):
            found = self.client.describe_launch_templates(Filters=[tag_filter(self.balancer_id)])["LaunchTemplates"]
        for template in found:
            if not carries(template, self.balancer_id):
                continue
            try:
                with _api(f"delete launch template {template['LaunchTemplateId']}"):
                    self.client.delete_launch_template(LaunchTemplateId=template["LaunchTemplateId"])
            except EC2Error as exc:
                if not exc.missing:
                    raise
        self._template = None
        return True

    # -- launching --------------------------------------------------------

    def fleet_request(
        self, count: int, spec: LaunchSpec, template_id: str, version: int | str, on_demand_price: float | None = None
    ) -> dict[str, t.Any]:
        """The CreateFleet parameters for ``count`` slaves (without ClientToken), tagged with our id:
        spot ones, or on-demand ones at most ``on_demand_price`` each."""
        return fleet_request(count, spec, template_id, version, self.balancer_id, on_demand_price)

    def launch(self, count: int, spec: LaunchSpec, on_demand_price: float | None = None) -> LaunchResult:
        """Launch ``count`` spot slaves with one instant CreateFleet (on-demand ones, tagged
        ``gbrowse-aws:lifecycle=on-demand``, with ``on_demand_price``: USD/hour one may cost).

        Returns the launched ids and EC2's errors for the rest (a partial launch
        is not an exception). Raises :class:`CapacityError` when nothing was
        launched and every error is about capacity, price or quota;
        :class:`EC2Error` for anything else.
        """
        if count < 0:
            raise ValueError(f"invalid number of slaves to launch: {count}")
        if count == 0:
            return LaunchResult(())
        return launch_result(count, self._create_fleet(count, spec, on_demand_price=on_demand_price))

    def _create_fleet(
        self, count: int, spec: LaunchSpec, again: bool = False, on_demand_price: float | None = None
    ) -> dict[str, t.Any]:
        """CreateFleet's answer; made once more with a template made anew when ours vanished.

        EC2 says so either way, an error of the call or errors in its answer:
        both are the launch template's stale reference (see _ec2_errors), and
        both are recovered here, once.
        """
        if again:
            self._template = None  # our template vanished behind our back (deleted by hand?)
        template_id = self.ensure_launch_template(spec)
        params = self.fleet_request(count, spec, template_id, self.template_version or "$Default", on_demand_price)
        # One token per request: botocore's retry of this very request (after a
        # timeout, say) cannot launch twice.
        params["ClientToken"] = str(uuid.uuid4())
        try:
            with _api(f"launch {count} slave(s)"):
                answer = self.client.create_fleet(**params)
        except EC2Error as exc:
            if again or exc.code not in LAUNCH_TEMPLATE.stale_reference:
                raise
        else:
            if again or not template_vanished(answer):
                return answer
        return self._create_fleet(count, spec, again=True, on_demand_price=on_demand_price)

    # -- spot prices ------------------------------------------------------

    def spot_price(self, instance_types: t.Sequence[str], zones: t.Sequence[str] = ()) -> float | None:
        """The highest current Linux/UNIX spot price (USD/hour) among ``instance_types`` in ``zones``
        (all the region's when empty); None when EC2 gives none.

        Asked at most every SPOT_PRICE_MAX_AGE seconds per (types, zones); a
        failed call is remembered as long (None), and raises EC2Error once.
        """
        key = (tuple(sorted(set(instance_types))), tuple(sorted(set(zones))))
        cached = self._prices.get(key)
        if cached is not None and time.monotonic() - cached[0] < SPOT_PRICE_MAX_AGE:
            return cached[1]
        params: dict[str, t.Any] = {
            "InstanceTypes": list(key[0]),
            "ProductDescriptions": ["Linux/UNIX", "Linux/UNIX (Amazon VPC)"],
            # From now: EC2 answers the price in effect now for each type and zone.
            "StartTime": time.time(),
        }
        if key[1]:
            params["Filters"] = [{"Name": "availability-zone", "Values": list(key[1])}]
        try:
            with _api("describe spot prices"):
                pages = self.client.get_paginator("describe_spot_price_history").paginate(
                    **params, PaginationConfig={"PageSize": DESCRIBE_PAGE_SIZE}
                )
                found = highest_spot_price(item for page in pages for item in page.get("SpotPriceHistory") or ())
        except EC2Error:
            self._prices[key] = (time.monotonic(), None)
            raise
        self._prices[key] = (time.monotonic(), found)
        return found

    def subnet_zone(self, subnet_id: str) -> str | None:
        """The zone of ``subnet_id`` (described once per object)."""
        if subnet_id not in self._zones:
            self._zones[subnet_id] = self.describe_subnet(subnet_id).availability_zone
        return self._zones[subnet_id]

    def forget(self) -> None:
        """Drop what this object remembers (template, image, security group, fleet): ask EC2 again next time.

        For a caller that learns a resource was changed behind its back, e.g.
        a launch failing with ``InvalidGroup.NotFound`` (``exc.stale_reference``).
        """
        self._template = None
        self._images.clear()
        self._group = None
        self._fleet = None

    # -- the security group -----------------------------------------------

    def ensure_security_group(
        self,
        vpc_id: str | None,
        ports: t.Iterable[int],
        *,
        source_cidr: str | None = None,
        source_group_id: str | None = None,
        ssh: bool = False,
    ) -> str:
        """The id of our security group, letting the master reach the slaves.

        One group per balancer id (named like the launch template, tagged at
        creation) in ``vpc_id`` (None: the default VPC). Ingress: TCP on each
        port, and 22 when ``ssh``, from ``source_cidr`` (a bare address means
        /32) and/or ``source_group_id``. Rules are converged: missing ones are
        added, ones no longer wanted are revoked. Remembers the last result.
        """
        wanted = ingress_rules(ports, source_cidr=source_cidr, source_group_id=source_group_id, ssh=ssh)
        key = (vpc_id, wanted)
        if self._group is not None and self._group[0] == key:
            return self._group[1]

        group = self._find_group(vpc_id)
        if group is None:
            group = self._create_group(vpc_id)
        group_id = group["GroupId"]
        present = permissions_of(group.get("IpPermissions") or ())
        missing = sorted(wanted - present)
        extra = sorted(present - wanted)
        if missing:
            try:
                with _api(f"authorize ingress to security group {group_id}"):
                    self.client.authorize_security_group_ingress(
                        GroupId=group_id, IpPermissions=ip_permissions(missing)
                    )
            except EC2Error as exc:
                if not exc.already_exists:
                    raise
        if extra:
            try:
                with _api(f"revoke ingress from security group {group_id}"):
                    self.client.revoke_security_group_ingress(GroupId=group_id, IpPermissions=ip_permissions(extra))
            except EC2Error as exc:
                if not exc.missing:
                    raise
        self._group = (key, group_id)
        return group_id

    def _find_groups(self, vpc_id: str | None = None) -> list[dict[str, t.Any]]:
        filters = [tag_filter(self.balancer_id), {"Name": "group-name", "Values": [self.name]}]
        if vpc_id:
            filters.append({"Name": "vpc-id", "Values": [vpc_id]})
        with _api("describe security groups"):
            found = self.client.describe_security_groups(Filters=filters)["SecurityGroups"]
        return [g for g in found if carries(g, self.balancer_id)]

    def _find_group(self, vpc_id: str | None) -> dict[str, t.Any] | None:
        groups = self._find_groups(vpc_id)
        return groups[0] if groups else None

    def _create_group(self, vpc_id: str | None) -> dict[str, t.Any]:
        params: dict[str, t.Any] = {
            "GroupName": self.name,
            "Description": f"GBrowse render slaves of balancer {self.balancer_id}",
            "TagSpecifications": [{"ResourceType": "security-group", "Tags": our_tags(self.balancer_id)}],
        }
        if vpc_id:
            params["VpcId"] = vpc_id
        try:
            with _api(f"create security group {self.name}"):
                group_id = self.client.create_security_group(**params)["GroupId"]
        except EC2Error as exc:
            if not exc.already_exists:
                raise
            group = self._find_group(vpc_id)
            if group is None:
                raise EC2Error(
                    f"A security group named {self.name} exists but does not carry {BALANCER_TAG}={self.balancer_id}",
                    code=exc.code,
                ) from exc
            return group
        return {"GroupId": group_id, "IpPermissions": []}

    def delete_security_group(self) -> bool:
        """Delete our security group(s). False (not an error) while instances still use one."""
        self._group = None
        gone = True
        for group in self._find_groups():
            try:
                with _api(f"delete security group {group['GroupId']}"):
                    self.client.delete_security_group(GroupId=group["GroupId"])
            except EC2Error as exc:
                if exc.in_use:
                    gone = False
                elif not exc.missing:
                    raise
        return gone
