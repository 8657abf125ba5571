"""The one rule for http(s) URLs (_url.py), as its four users apply it."""

from __future__ import annotations

import pytest

from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._url import is_http_url, split_http_url

GOOD = ["http://localhost/server-status", "https://u:p@127.0.0.1:8443/x?auto", "http://[::1]:8080/", "HTTP://h"]
BAD = ["", "notaurl", "ftp://h/", "http://", "http:///x", "http://:80", "http://h:99999/", "http://h:0/",
       "http://h:x/", "http://[::1/", "http://h/a b", " http://h/", 12]


@pytest.mark.parametrize("url", GOOD)
def test_accepted(url: str) -> None:
    assert is_http_url(url) and split_http_url(url).hostname


@pytest.mark.parametrize("url", BAD)
def test_refused(url: str) -> None:
    assert not is_http_url(url)  # type: ignore[arg-type]


def test_the_reason_never_names_the_url() -> None:
    with pytest.raises(ValueError) as raised:
        split_http_url("ftp://u:hunter2@h/")
    assert "hunter2" not in str(raised.value)


@pytest.mark.parametrize("url", BAD[:-1])
def test_every_user_refuses_alike(url: str) -> None:
    """The conf, the status reader and the endpoint check all say no to the same URLs."""
    from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._conf import ConfError, parse_conf
    from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._ec2 import EC2Error, check_endpoint_url
    from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._status import StatusError, status_url

    with pytest.raises(EC2Error):
        check_endpoint_url(url)
    if url.strip() != url:
        return  # the status reader strips what the conf reader strips too
    with pytest.raises(StatusError):
        status_url(url)
    if not url:
        return  # an empty conf value leaves the key unset
    text = f"[LOAD TABLE]\n0 0 1\n[MASTER]\nserver_status_url = {url}\n[SLAVE]\ninstance_type = m5.large\nspot_bid = 0.1\nports = 8101\n"
    with pytest.raises(ConfError):
        parse_conf(text, "t.conf")
