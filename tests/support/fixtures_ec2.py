# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""pytest fixtures for the fake EC2 (see moto.py, slaves.py, faultproxy.py here).

Load them with ``pytest_plugins = ["ansible_collections.gmod.gbrowse_aws.tests.support.fixtures_ec2"]``
in a test module or the root conftest, or import them into a conftest:
``from ansible_collections.gmod.gbrowse_aws.tests.support.fixtures_ec2 import *  # noqa: F401,F403``
(``__all__`` lists every fixture, the hidden session one included).

- ``moto_server``: one moto server for the whole session (started on first
  use), emptied before each test that uses it. A :class:`MotoServer`.
- ``ec2_client``: a boto3 EC2 client on it (dummy keys, us-west-2).
- ``aws_environment``: this test's ``os.environ`` pointed at moto (dummy keys,
  ``AWS_ENDPOINT_URL``, metadata disabled, no shared config); undone after.
- ``network``: the slaves' VPC 127.100.0.0/16 and a subnet 127.100.N.0/24 (a
  ``Network``), N in 2..251 chosen per session so that concurrent test runs
  on one machine never share slave addresses (the demo keeps 127.100.1.0/24).
- ``slave_stand_ins``: :class:`SlaveStandIns` for every running instance, all
  answering 403 on port 8101 (change per instance with ``set_behaviour``).
- ``fault_proxy``: a :class:`FaultProxy` in front of moto failing 30% of EC2
  calls with throttling, seeded.
- ``fake_imds``: a :class:`FakeInstanceMetadata` on loopback.

Everything started here is stopped at teardown, also when the test fails.
"""

from __future__ import annotations

import os
import typing as t

import pytest

from ansible_collections.gmod.gbrowse_aws.tests.support.faultproxy import FaultProxy
from ansible_collections.gmod.gbrowse_aws.tests.support.moto import (
    FakeInstanceMetadata,
    MotoServer,
    Network,
    make_network,
)
from ansible_collections.gmod.gbrowse_aws.tests.support.slaves import SlaveStandIns

__all__ = [
    "_moto_session",
    "moto_server",
    "ec2_client",
    "aws_environment",
    "network",
    "slave_stand_ins",
    "fault_proxy",
    "fake_imds",
]

# Whatever the caller's shell says: nothing in a test may ask the real metadata service.
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"


@pytest.fixture(scope="session")
def _moto_session() -> t.Iterator[MotoServer]:
    with MotoServer() as server:
        yield server


@pytest.fixture
def moto_server(_moto_session: MotoServer) -> MotoServer:
    _moto_session.reset()
    return _moto_session


@pytest.fixture
def ec2_client(moto_server: MotoServer) -> t.Any:
    return moto_server.client()


@pytest.fixture
def aws_environment(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for key in list(os.environ):
        if key.startswith(("AWS_", "EC2_")):
            monkeypatch.delenv(key)
    env = moto_server.env()
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


@pytest.fixture
def network(moto_server: MotoServer, ec2_client: t.Any) -> Network:
    # A /24 of its own per session (from moto's port): two test runs on one
    # machine at the same time never put stand-ins on the same address.
    return make_network(ec2_client, subnet_cidr=f"127.100.{2 + moto_server.port % 250}.0/24")


@pytest.fixture
def slave_stand_ins(moto_server: MotoServer) -> t.Iterator[SlaveStandIns]:
    with SlaveStandIns(moto_server.url) as stand_ins:
        yield stand_ins


@pytest.fixture
def fault_proxy(moto_server: MotoServer) -> t.Iterator[FaultProxy]:
    with FaultProxy(moto_server.url, fail_ratio=0.3, seed=20261124) as proxy:
        yield proxy


@pytest.fixture
def fake_imds() -> t.Iterator[FakeInstanceMetadata]:
    with FakeInstanceMetadata() as imds:
        yield imds
