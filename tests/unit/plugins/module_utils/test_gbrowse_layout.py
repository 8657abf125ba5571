# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""GBrowse's layout found as GBrowse finds it, against temporary trees (and the real Perl, when there is one)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._gbrowse_layout import (
    ConfigData,
    ask_perl,
    find_layout,
    includes,
    read_config_data,
    renderfarm_problems,
    scan_config_data,
    writable_directory,
)

# The data part of Debian bookworm's /etc/gbrowse/ConfigData.pm (gbrowse 2.56+dfsg-11), as Module::Build wrote it.
DEBIAN_CONFIG_DATA = """package GBrowse::ConfigData;
use strict;
my $arrayref = eval do {local $/; <DATA>}
  or die "Couldn't load ConfigData data: $@";
close DATA;
my ($config, $features, $auto_features) = @$arrayref;

sub config { $config->{$_[1]} }

1;
__DATA__
do{ my $x = [
       {
         'OpenIDConsumerSecret' => '959107410846613',
         'cgibin' => '/usr/lib/cgi-bin/gbrowse',
         'conf' => '/etc/gbrowse',
         'config_done' => 1,
         'databases' => '/var/lib/gbrowse/databases',
         'htdocs' => '/usr/share/gbrowse/htdocs',
         'persistent' => '/var/lib/gbrowse',
         'tmp' => '/var/cache/gbrowse'
       },
       {},
       {}
     ];
$x; }"""

# The head of Debian's GBrowse.conf, with its include line.
GBROWSE_CONF = """[GENERAL]
config_base            = /etc/gbrowse   # overridden by environment variable GBROWSE_CONF
persistent_base        = /var/lib/gbrowse
db_base                = /var/lib/gbrowse/databases

#include renderfarm.conf
"""


def NO_DATA(environ):  # noqa: N802  # no GBrowse::ConfigData anywhere
    return None


def _data(conf: str = "/etc/gbrowse", databases: str = "/var/lib/gbrowse/databases"):
    return lambda environ: ConfigData("/usr/share/perl5/GBrowse/ConfigData.pm", conf, databases)


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.mark.parametrize(
    "environ, data, files, conf_dir, conf_from",
    [
        # GBROWSE_CONF wins over everything, as in Bio::Graphics::Browser2->config_base
        ({"GBROWSE_CONF": "/srv/gb/etc/"}, _data(), {}, "/srv/gb/etc", "the environment variable GBROWSE_CONF"),
        # then ConfigData's conf, whether or not the directory is there
        ({}, _data(), {}, "/etc/gbrowse", "GBrowse's ConfigData.pm, /usr/share/perl5/GBrowse/ConfigData.pm"),
        ({"GBROWSE_CONF": ""}, _data("/opt/gbrowse/etc"), {}, "/opt/gbrowse/etc", "GBrowse's ConfigData.pm"),
        # then the first known directory holding GBrowse.conf or aws_balancer.conf
        ({}, NO_DATA, {"/etc/gbrowse/GBrowse.conf": ""}, "/etc/gbrowse", "the first of"),
        ({}, NO_DATA, {"/opt/gbrowse/etc/aws_balancer.conf": ""}, "/opt/gbrowse/etc", "the first of"),
        ({}, NO_DATA, {"/etc/gbrowse2/GBrowse.conf": "", "/etc/gbrowse/GBrowse.conf": ""}, "/etc/gbrowse2", "the first"),
        ({}, NO_DATA, {"/etc/gbrowse2/other.conf": "", "/etc/gbrowse/GBrowse.conf": ""}, "/etc/gbrowse", "the first"),
        # ConfigData without conf counts as no answer
        ({}, _data(""), {"/etc/gbrowse/GBrowse.conf": ""}, "/etc/gbrowse", "the first of"),
        # nothing at all: GBrowse's installer's default
        ({}, NO_DATA, {}, "/etc/gbrowse2", "a default: no GBrowse configuration found"),
    ],
)
def test_conf_dir_in_gbrowses_order(tmp_path, environ, data, files, conf_dir, conf_from):
    layout = find_layout(environ, config_data=data, root=str(_tree(tmp_path, files)))
    assert layout.conf_dir == conf_dir
    assert layout.conf_dir_from.startswith(conf_from)
    assert layout.balancer_conf == f"{conf_dir}/aws_balancer.conf"
    assert layout.renderfarm_conf == f"{conf_dir}/renderfarm.conf"


@pytest.mark.parametrize(
    "gbrowse_conf, data, databases, databases_from",
    [
        (GBROWSE_CONF, _data(databases="/elsewhere"), "/var/lib/gbrowse/databases", "db_base in "),
        ("[GENERAL]\npersistent_base = /srv/gb  # here\n", _data(databases="/x"), "/srv/gb/databases", "persistent_base in "),
        ("[GENERAL]\ntmp_base = /tmp\n[other]\ndb_base = /no\n", _data(databases="/cd/db"), "/cd/db", "GBrowse's ConfigData.pm"),
        (None, _data(databases="/cd/db"), "/cd/db", "GBrowse's ConfigData.pm"),
        (None, NO_DATA, "/var/lib/gbrowse/databases", "a default"),
    ],
)
def test_databases_as_gbrowses_db_base(tmp_path, gbrowse_conf, data, databases, databases_from):
    files = {} if gbrowse_conf is None else {"/etc/gbrowse/GBrowse.conf": gbrowse_conf}
    root = _tree(tmp_path, files)
    layout = find_layout({"GBROWSE_CONF": "/etc/gbrowse"}, config_data=data, root=str(root))
    assert (layout.databases, layout.databases_from[: len(databases_from)]) == (databases, databases_from)


def test_unknown_conf_dir_gets_the_installers_databases(tmp_path):
    layout = find_layout({"GBROWSE_CONF": "/srv/gb"}, config_data=NO_DATA, root=str(tmp_path))
    assert layout.databases == "/var/lib/gbrowse2/databases"


def test_config_data_read_without_running_it(tmp_path):
    path = tmp_path / "ConfigData.pm"
    path.write_text(DEBIAN_CONFIG_DATA)
    assert read_config_data(str(path)) == ConfigData(str(path), "/etc/gbrowse", "/var/lib/gbrowse/databases")
    path.write_text("package GBrowse::ConfigData;\n1;\n")
    assert read_config_data(str(path)) is None
    assert read_config_data(str(tmp_path / "missing.pm")) is None


def test_config_data_found_in_perl_directories(tmp_path):
    _tree(tmp_path, {"share/perl/5.36.0/GBrowse/ConfigData.pm": DEBIAN_CONFIG_DATA.replace("/etc/gbrowse'", "/etc/gb'")})
    found = scan_config_data([str(tmp_path / "none"), str(tmp_path / "share/perl/*")])
    assert found is not None and found.conf == "/etc/gb"
    assert found.path == str(tmp_path / "share/perl/5.36.0/GBrowse/ConfigData.pm")
    assert scan_config_data([str(tmp_path / "none")]) is None


@pytest.mark.skipif(shutil.which("perl") is None, reason="perl is not installed")
def test_perl_finds_config_data_through_perl5lib(tmp_path):
    _tree(tmp_path, {"lib/GBrowse/ConfigData.pm": DEBIAN_CONFIG_DATA})
    found = ask_perl({"PERL5LIB": str(tmp_path / "lib"), "PATH": "/usr/bin:/bin"})
    assert found == ConfigData(str(tmp_path / "lib/GBrowse/ConfigData.pm"), "/etc/gbrowse", "/var/lib/gbrowse/databases")
    # the default finder asks Perl first
    layout = find_layout({"PERL5LIB": str(tmp_path / "lib"), "PATH": "/usr/bin:/bin"}, root=str(tmp_path))
    assert layout.conf_dir == "/etc/gbrowse" and str(tmp_path / "lib") in layout.conf_dir_from


def test_perl_without_the_module_or_perl_at_all(tmp_path):
    assert ask_perl({"PATH": str(tmp_path)}) is None  # no perl on PATH
    if shutil.which("perl") and subprocess.run(["perl", "-MGBrowse::ConfigData", "-e", "1"], capture_output=True, check=False).returncode:
        assert ask_perl({"PATH": "/usr/bin:/bin", "PERL5LIB": str(tmp_path)}) is None


@pytest.mark.parametrize(
    "include, found",
    [
        ("#include renderfarm.conf", True),
        ('#include "renderfarm.conf"', True),
        ("  #include\t'renderfarm.conf'  ", True),
        ("#include {dir}/renderfarm.conf", True),
        ("#include ./renderfarm.conf", True),
        ("# #include renderfarm.conf", False),
        ("#include renderfarm.conf.bak", False),
        ("#include other/renderfarm.conf", False),
        ("", False),
    ],
)
def test_includes(tmp_path, include, found):
    master = tmp_path / "GBrowse.conf"
    master.write_text("[GENERAL]\n" + include.format(dir=tmp_path) + "\n")
    assert includes(str(master), str(tmp_path / "renderfarm.conf")) is found


def test_renderfarm_problems(tmp_path):
    etc, state = tmp_path / "etc", tmp_path / "state"
    etc.mkdir()
    state.mkdir()
    layout = find_layout({"GBROWSE_CONF": str(etc)}, config_data=NO_DATA)
    farm = str(etc / "renderfarm.conf")
    [problem] = renderfarm_problems(farm, layout)
    assert "no GBrowse.conf includes it" in problem and str(etc / "GBrowse.conf") in problem
    (etc / "GBrowse.conf").write_text(GBROWSE_CONF)
    assert renderfarm_problems(farm, layout) == []
    # The role's layout: the balancer writes its own copy; GBrowse's renderfarm.conf links to it.
    (state / "renderfarm.conf").write_text("")
    (etc / "renderfarm.conf").symlink_to(state / "renderfarm.conf")
    assert renderfarm_problems(str(state / "renderfarm.conf"), layout) == []
    (etc / "renderfarm.conf").unlink()
    [problem] = renderfarm_problems(str(state / "renderfarm.conf"), layout)
    assert "no GBrowse.conf includes it" in problem
    problems = renderfarm_problems(str(tmp_path / "missing" / "renderfarm.conf"), layout)
    assert "missing does not exist" in problems[0]


def test_writable_directory(tmp_path):
    assert writable_directory(str(tmp_path / "renderfarm.conf")) is None
    assert list(tmp_path.iterdir()) == []  # the probe leaves nothing
    assert "does not exist" in str(writable_directory(str(tmp_path / "gone" / "renderfarm.conf")))
    (tmp_path / "file").write_text("")
    assert "does not exist" in str(writable_directory(str(tmp_path / "file" / "renderfarm.conf")))
