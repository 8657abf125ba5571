# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Where this master's GBrowse keeps its configuration and databases, found as GBrowse finds them.

GBrowse 2 (``Bio::Graphics::Browser2->config_base``) takes its configuration
directory from ``GBROWSE_CONF`` (Apache sets it), else from ``conf`` in
``GBrowse::ConfigData`` (written by its installer: ``/etc/gbrowse`` on Debian,
``/etc/gbrowse2`` from source). Its databases are ``db_base`` of GBrowse.conf,
else ``persistent_base``/databases, else ``databases`` of ConfigData. Without
any of those (GBrowse not installed here, or installed in a way we cannot
read), the first known directory that holds GBrowse.conf or aws_balancer.conf
is used: ``/etc/gbrowse2`` (GBrowse's installer), ``/etc/gbrowse`` (Debian),
``/opt/gbrowse/etc`` (the GBrowse cloud image). Every answer says where it
came from, for ``--check-config``.

This is the one place that knows these rules: the balancer's ``--conf`` and
``renderfarm_conf`` defaults, the sync's ``--databases`` default and the
role's configuration directory all come from :func:`find_layout`.
"""

from __future__ import annotations

import os
import posixpath
import re
import subprocess
import typing as t
from dataclasses import dataclass

from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._atomic import temp_prefix
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._renderfarm import general_settings

#: Where GBrowse's configuration may be, in the order tried when GBrowse does not say.
KNOWN_CONF_DIRS = ("/etc/gbrowse2", "/etc/gbrowse", "/opt/gbrowse/etc")
#: The databases directory that goes with each known configuration directory.
KNOWN_DATABASES = {
    "/etc/gbrowse2": "/var/lib/gbrowse2/databases",
    "/etc/gbrowse": "/var/lib/gbrowse/databases",
    "/opt/gbrowse/etc": "/opt/gbrowse/databases",
}
#: Perl's @INC directories where a packaged GBrowse::ConfigData may be (Debian, CPAN, site installs).
KNOWN_PERL_DIRS = (
    "/etc/perl",
    "/usr/local/lib/x86_64-linux-gnu/perl/*",
    "/usr/local/share/perl/*",
    "/usr/lib/x86_64-linux-gnu/perl5/*",
    "/usr/share/perl5",
    "/usr/lib/x86_64-linux-gnu/perl/*",
    "/usr/share/perl/*",
    "/usr/local/share/perl5",
    "/usr/share/perl5/vendor_perl",
    "/usr/local/lib64/perl5",
)
CONFIG_DATA = "GBrowse/ConfigData.pm"
MASTER_CONF = "GBrowse.conf"
BALANCER_CONF = "aws_balancer.conf"
RENDERFARM_CONF = "renderfarm.conf"
#: How long asking Perl may take: ConfigData.pm loads in milliseconds.
PERL_TIMEOUT = 5.0

_PERL_QUERY = (
    "use GBrowse::ConfigData; "
    'print join("\\0", $INC{"GBrowse/ConfigData.pm"}, '
    'map { GBrowse::ConfigData->config($_) // "" } qw(conf databases))'
)
# What Module::Build's Data::Dumper writes in ConfigData.pm's __DATA__: 'conf' => '/etc/gbrowse',
_DUMPED = re.compile(r"'(conf|databases)'\s*=>\s*'((?:[^'\\]|\\.)*)'")
_INCLUDE = re.compile(r"^[ \t]*#include[ \t]+(.+?)[ \t]*$", re.M)


@dataclass(frozen=True)
class ConfigData:
    """What GBrowse::ConfigData says: its file, and its ``conf`` and ``databases`` ("" when not set)."""

    path: str
    conf: str
    databases: str


@dataclass(frozen=True)
class GBrowseLayout:
    """GBrowse's configuration directory and databases directory, each with where it came from."""

    conf_dir: str
    conf_dir_from: str
    databases: str
    databases_from: str

    @property
    def balancer_conf(self) -> str:
        """The default ``--conf``: aws_balancer.conf next to GBrowse.conf."""
        return posixpath.join(self.conf_dir, BALANCER_CONF)

    @property
    def renderfarm_conf(self) -> str:
        """The default ``renderfarm_conf``: GBrowse.conf's ``#include renderfarm.conf`` is relative to it."""
        return posixpath.join(self.conf_dir, RENDERFARM_CONF)

    def as_dict(self) -> dict[str, str]:
        return {
            "conf_dir": self.conf_dir,
            "conf_dir_from": self.conf_dir_from,
            "databases": self.databases,
            "databases_from": self.databases_from,
            "balancer_conf": self.balancer_conf,
            "renderfarm_conf": self.renderfarm_conf,
        }


def ask_perl(environ: t.Mapping[str, str], timeout: float = PERL_TIMEOUT) -> ConfigData | None:
    """GBrowse::ConfigData as Perl loads it (through @INC, PERL5LIB included); None when Perl cannot."""
    # Shared by the daemon (no AnsibleModule there) and balancer_conf_info: a fixed
    # argv, no shell, a timeout, nothing secret; so plain subprocess.
    try:
        result = subprocess.run(  # pylint: disable=ansible-bad-function
            ["perl", "-e", _PERL_QUERY],
            capture_output=True,
            timeout=timeout,
            env=dict(environ),
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    fields = result.stdout.decode("utf-8", "surrogateescape").split("\0")
    if result.returncode != 0 or len(fields) != 3 or not fields[0]:
        return None
    return ConfigData(posixpath.abspath(fields[0]), fields[1], fields[2])


def read_config_data(path: str) -> ConfigData | None:
    """``conf`` and ``databases`` read from the text of a ConfigData.pm, without running it; None if unreadable."""
    try:
        with open(path, "rb") as handle:
            text = handle.read().decode("utf-8", "surrogateescape")
    except OSError:
        return None
    data = text.partition("\n__DATA__\n")[2] or text
    values = {name: re.sub(r"\\(.)", r"\1", value) for name, value in _DUMPED.findall(data)}
    if not values:
        return None
    return ConfigData(path, values.get("conf", ""), values.get("databases", ""))


def scan_config_data(perl_dirs: t.Iterable[str] = KNOWN_PERL_DIRS) -> ConfigData | None:
    """The first readable GBrowse/ConfigData.pm in ``perl_dirs`` (shell patterns allowed)."""
    import glob

    for pattern in perl_dirs:
        for directory in sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]:
            found = read_config_data(posixpath.join(directory, CONFIG_DATA))
            if found is not None:
                return found
    return None


def find_layout(
    environ: t.Mapping[str, str] | None = None,
    *,
    config_data: t.Callable[[t.Mapping[str, str]], ConfigData | None] | None = None,
    known_dirs: t.Sequence[str] = KNOWN_CONF_DIRS,
    root: str = "",
) -> GBrowseLayout:
    """GBrowse's layout on this host; see the module's docstring for the order of the rules.

    ``config_data`` finds GBrowse::ConfigData (default: ask Perl, then look in
    the usual @INC directories); ``root`` is prefixed to the known directories
    when testing for them (tests point it at a temporary tree).
    """
    env = os.environ if environ is None else environ
    if config_data is None:
        config_data = _default_config_data
    data = config_data(env)
    from_data = f"GBrowse's ConfigData.pm, {data.path}" if data else ""

    if env.get("GBROWSE_CONF"):
        conf_dir, conf_from = env["GBROWSE_CONF"], "the environment variable GBROWSE_CONF"
    elif data and data.conf:
        conf_dir, conf_from = data.conf, from_data
    else:
        conf_dir, conf_from = known_dirs[0], f"a default: no GBrowse configuration found in {', '.join(known_dirs)}"
        for candidate in known_dirs:
            if any(os.path.isfile(root + posixpath.join(candidate, name)) for name in (MASTER_CONF, BALANCER_CONF)):
                conf_dir, conf_from = candidate, f"the first of {', '.join(known_dirs)} that holds {MASTER_CONF}"
                break
    conf_dir = posixpath.normpath(conf_dir)

    databases, databases_from = _databases(root + posixpath.join(conf_dir, MASTER_CONF))
    if not databases and data and data.databases:
        databases, databases_from = data.databases, from_data
    if not databases:
        databases = KNOWN_DATABASES.get(conf_dir, KNOWN_DATABASES[KNOWN_CONF_DIRS[0]])
        databases_from = f"a default: neither {MASTER_CONF} nor ConfigData.pm names it"
    return GBrowseLayout(conf_dir, conf_from, databases, databases_from)


def _default_config_data(environ: t.Mapping[str, str]) -> ConfigData | None:
    return ask_perl(environ) or scan_config_data()


def _databases(master_conf: str) -> tuple[str, str]:
    """GBrowse.conf's ``db_base``, else its ``persistent_base``/databases, as GBrowse's db_base() has it."""
    try:
        with open(master_conf, "rb") as handle:
            settings = general_settings(handle.read().decode("utf-8", "surrogateescape"))
    except OSError:
        return "", ""
    if settings.get("db_base"):
        return settings["db_base"], f"db_base in {master_conf}"
    if settings.get("persistent_base"):
        return posixpath.join(settings["persistent_base"], "databases"), f"persistent_base in {master_conf}"
    return "", ""


def includes(master_conf: str, target: str) -> bool:
    """Whether the GBrowse.conf at ``master_conf`` has an ``#include`` line that reads ``target``.

    An include is relative to the including file's directory, as in
    Bio::Graphics::FeatureFile; links are followed on both sides (the role
    links GBrowse's renderfarm.conf to the balancer's copy).
    """
    try:
        with open(master_conf, "rb") as handle:
            text = handle.read().decode("utf-8", "surrogateescape")
    except OSError:
        return False
    wanted = os.path.realpath(target)
    base = posixpath.dirname(master_conf)
    for match in _INCLUDE.finditer(text):
        name = match.group(1).strip("'\"")
        if os.path.realpath(posixpath.join(base, name)) == wanted:
            return True
    return False


def renderfarm_problems(renderfarm_conf: str, layout: GBrowseLayout) -> list[str]:
    """Why GBrowse would not read ``renderfarm_conf``, or the balancer could not write it (empty: fine).

    GBrowse reads the render farm only through ``#include renderfarm.conf`` in
    its GBrowse.conf; the balancer replaces the file by a rename in its
    directory (the directory of the file a link points to).
    """
    problems = []
    directory = posixpath.dirname(os.path.realpath(renderfarm_conf))
    if not os.path.isdir(directory):
        problems.append(f"renderfarm_conf {renderfarm_conf}: the directory {directory} does not exist")
    masters = dict.fromkeys(
        posixpath.join(d, MASTER_CONF) for d in (posixpath.dirname(renderfarm_conf), layout.conf_dir)
    )
    if not any(includes(master, renderfarm_conf) for master in masters):
        problems.append(
            f"renderfarm_conf {renderfarm_conf}: no GBrowse.conf includes it "
            f"(looked in {', '.join(masters)} for '#include {posixpath.basename(renderfarm_conf)}'): "
            "GBrowse will not use the slaves"
        )
    return problems


def writable_directory(path: str) -> str | None:
    """None when a file can be created next to ``path`` (where a link points), else why not.

    Creates and removes a temporary file, as the atomic rewrite of the file
    does: permission bits, read-only mounts, immutable directories, ACLs and
    sandboxing all show.
    """
    import tempfile

    directory = posixpath.dirname(os.path.realpath(path))
    if not os.path.isdir(directory):
        return f"the directory {directory} does not exist"
    try:
        # The atomic writer's own temporary name: one it would clean up, were this probe killed here.
        fd, temp = tempfile.mkstemp(prefix=temp_prefix(posixpath.basename(path)), dir=directory)
    except OSError as exc:
        return f"cannot create files in {directory}: {exc.strerror or exc}"
    os.close(fd)
    os.unlink(temp)
    return None


__all__ = [
    "ConfigData",
    "GBrowseLayout",
    "ask_perl",
    "find_layout",
    "includes",
    "read_config_data",
    "renderfarm_problems",
    "scan_config_data",
    "writable_directory",
]
