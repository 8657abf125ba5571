# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""System-test fixtures: each real part has its own module in tests/support."""

from __future__ import annotations

from ansible_collections.gmod.gbrowse_aws.tests.support.apache import (  # noqa: F401 pylint: disable=unused-import
    fixed_rate_load,
    private_apache,
)
from ansible_collections.gmod.gbrowse_aws.tests.support.fixtures_ec2 import (  # noqa: F401 pylint: disable=unused-import
    _moto_session,
    aws_environment,
    ec2_client,
    fake_imds,
    fault_proxy,
    moto_server,
    network,
    slave_stand_ins,
)
