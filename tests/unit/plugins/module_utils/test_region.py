"""The region rule (_ec2.region_and_source): one order for the daemon, spot_fleet and the sync."""

from __future__ import annotations

import pytest

from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._ec2 import region_and_source, resolved_region


@pytest.mark.parametrize(
    "conf, master, env, expected",
    [
        ("us-west-2", "eu-central-1", {"AWS_REGION": "eu-north-1", "AWS_PROFILE": "lab"}, ("us-west-2", "conf")),
        (None, "eu-central-1", {"AWS_REGION": "eu-north-1", "AWS_PROFILE": "lab"}, ("eu-central-1", "instance metadata")),
        (None, None, {"AWS_REGION": "eu-north-1", "AWS_DEFAULT_REGION": "ca-central-1"}, ("eu-north-1", "AWS_REGION")),
        (None, None, {"AWS_DEFAULT_REGION": "ca-central-1", "AWS_PROFILE": "lab"}, ("ca-central-1", "AWS config")),
        (None, None, {"AWS_PROFILE": "lab"}, ("eu-west-3", "AWS config")),  # the profile's, in ~/.aws/config
        (None, None, {}, ("ap-south-1", "AWS config")),  # the default profile's
        (None, None, {"AWS_CONFIG_FILE": "/nonexistent/aws-config"}, ("us-east-1", "default")),
    ],
)
def test_one_order(aws_files, monkeypatch, conf, master, env, expected) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert region_and_source(conf, master_region=master) == expected
    assert resolved_region(conf, master_region=master) == expected[0]


def test_the_aws_config_is_read_only_when_needed(aws_files, monkeypatch) -> None:
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")  # would be an error if consulted
    assert region_and_source("us-west-2") == ("us-west-2", "conf")
    assert region_and_source(None, master_region="eu-central-1") == ("eu-central-1", "instance metadata")


def test_the_playbooks_have_no_region_rule_of_their_own() -> None:
    """The sync reads balancer_conf_info's region: no Jinja fallback to AWS_REGION or us-east-1 may come back."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[4]
    for path in sorted([*root.glob("playbooks/**/*.yml"), *root.glob("roles/balancer/**/*.yml"), *root.glob("roles/balancer/**/*.j2")]):
        text = path.read_text(encoding="utf-8")
        for needle in ("'AWS_REGION'", "'AWS_DEFAULT_REGION'", "'us-east-1'"):
            assert needle not in text, f"{path.relative_to(root)}: resolves the region itself ({needle}); use balancer_conf_info's region"
