# -*- coding: utf-8 -*-
# Copyright (c) 2026, gbrowse_aws developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The master's renderfarm.conf: the list of render slaves GBrowse hands tracks to.

GBrowse reads it with Bio::Graphics::FeatureFile: ``[SECTION]`` headers (any
case), ``key = value`` settings, and indented continuation lines that extend
the value of the setting above them. Only two settings of ``[GENERAL]``
matter here: ``renderfarm`` (0 or 1) and ``remote renderer`` (the slave URLs).
The original rewrote the whole file; we rewrite only those two settings and
keep anything else an admin put there, and write only when the set of slaves
(or the on/off flag) really changes, so Apache is not reloaded for nothing.
"""

from __future__ import annotations

import re
import typing as t
from dataclasses import dataclass

from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._atomic import write_atomic
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._lines import canonical_section, raw_lines

GENERAL = "GENERAL"
RENDERFARM = "renderfarm"
REMOTE_RENDERER = "remote renderer"


@dataclass(frozen=True)
class RenderFarm:
    """What GBrowse will use: whether the render farm is on, and its slaves' URLs."""

    enabled: bool
    renderers: tuple[str, ...]


EMPTY = RenderFarm(enabled=False, renderers=())


@dataclass(frozen=True)
class RenderFarmUpdate:
    """The file before and after a change (equal when nothing changes), for diffs and check mode."""

    changed: bool
    before: str
    after: str
    old: RenderFarm
    new: RenderFarm


# ---------------------------------------------------------------------------
# Lines

_HEADER = re.compile(r"\s*\[([^\]]*)\]")
_SETTING = re.compile(r"([\w: -]+?)\s*=\s*(.*)")  # FeatureFile's own pattern for "tag = value"


@dataclass
class _Line:
    text: str
    eol: str
    kind: str  # blank | comment | header | setting | continuation | other
    section: str  # canonical name of the enclosing section; GENERAL before any header
    tag: str = ""  # setting: normalized tag; continuation: the tag it continues
    value: str = ""  # setting / continuation: the value text


def _tag(name: str) -> str:
    return " ".join(name.split()).lower()


def _scan(text: str) -> list[_Line]:
    lines = []
    section = GENERAL
    tag = ""  # the setting that indented lines continue
    for raw in raw_lines(text):
        content, stripped = raw.text, raw.stripped
        line = _Line(content, raw.eol, "other", section)
        if raw.kind != "code":
            line.kind = raw.kind
        elif content[0].isspace() and tag:
            line.kind, line.tag, line.value = "continuation", tag, stripped
        else:
            header = _HEADER.match(content)
            setting = _SETTING.fullmatch(stripped)
            if header:
                section = line.section = canonical_section(header.group(1))
                line.kind, tag = "header", ""
            elif setting:
                tag = _tag(setting.group(1))
                line.kind, line.tag, line.value = "setting", tag, setting.group(2)
            else:
                tag = ""
        lines.append(line)
    return lines


def _urls(value: str) -> list[str]:
    """The whitespace-separated words of ``value``, up to a ``#`` comment."""
    words = []
    for word in value.split():
        if word.startswith("#"):
            break
        words.append(word)
    return words


def _truthy(value: str) -> bool:
    """Perl's truth, as GBrowse applies it: '' and '0' are false."""
    value = value.strip()
    return value not in ("", "0")


# ---------------------------------------------------------------------------
# Reading


def parse_renderfarm(text: str) -> RenderFarm:
    """The render farm that ``text`` (a renderfarm.conf) configures.

    Renderers come from the ``remote renderer`` value and its continuation
    lines, in order, duplicates dropped. A later setting of the same name
    replaces an earlier one, as in GBrowse.
    """
    flag = ""
    renderers: list[str] = []
    for line in _scan(text):
        if line.section != GENERAL or line.kind not in ("setting", "continuation"):
            continue
        if line.tag == RENDERFARM:
            flag = line.value if line.kind == "setting" else f"{flag} {line.value}"
        elif line.tag == REMOTE_RENDERER:
            if line.kind == "setting":
                renderers = []
            renderers += [url for url in _urls(line.value) if url not in renderers]
    return RenderFarm(enabled=_truthy(flag), renderers=tuple(dict.fromkeys(renderers)))


def general_settings(text: str) -> dict[str, str]:
    """The ``[GENERAL]`` settings of a GBrowse configuration file (GBrowse.conf): tag -> value.

    Continuation lines are joined with a space, a later setting replaces an
    earlier one, trailing ``#`` comments are dropped; tags are lower case with
    single spaces, as GBrowse looks them up.
    """
    settings: dict[str, str] = {}
    for line in _scan(text):
        if line.section != GENERAL or line.kind not in ("setting", "continuation"):
            continue
        value = " ".join(_urls(line.value))
        if line.kind == "setting":
            settings[line.tag] = value
        else:
            settings[line.tag] = f"{settings.get(line.tag, '')} {value}".strip()
    return settings


def _read(path: str) -> str | None:
    """The file's text (undecodable bytes kept as surrogates), None when it does not exist."""
    try:
        with open(path, "rb") as handle:
            return handle.read().decode("utf-8", "surrogateescape")
    except FileNotFoundError:
        return None


def read_renderfarm(path: str) -> RenderFarm:
    """The render farm in the file at ``path``; a missing file is an empty farm. OSError if unreadable."""
    text = _read(path)
    return EMPTY if text is None else parse_renderfarm(text)


# ---------------------------------------------------------------------------
# Writing


def _clean(renderers: t.Iterable[str]) -> list[str]:
    """Distinct renderer URLs in a stable (natural) order; ValueError for one that cannot be written."""
    urls = []
    for url in renderers:
        url = url.strip()
        if not url:
            continue
        if any(c.isspace() for c in url) or url.startswith("#"):
            raise ValueError(f"renderer {url!r} cannot be written to renderfarm.conf")
        if url not in urls:
            urls.append(url)
    return sorted(urls, key=_natural)


def _natural(text: str) -> list[t.Any]:
    """Sort key putting http://10.0.0.9 before http://10.0.0.10."""
    return [int(part) if index % 2 else part for index, part in enumerate(re.split(r"([0-9]+)", text))]


def _block(renderers: t.Sequence[str], key: str = f"{REMOTE_RENDERER} =") -> list[str]:
    return [key] + [f"\t{url}" for url in renderers]


def render_renderfarm(text: str | None, renderers: t.Sequence[str]) -> str:
    """``text`` (a renderfarm.conf, None or empty for none) with its render farm set to ``renderers``.

    Only ``renderfarm`` and ``remote renderer`` in ``[GENERAL]`` are rewritten
    (added, with the section, when missing); every other line is kept. The
    renderers are written sorted, one per continuation line indented with a
    tab, as the original wrote them::

        [GENERAL]
        renderfarm = 1
        remote renderer =
        <TAB>http://10.0.0.5:8101
    """
    urls = _clean(renderers)
    flag = f"{RENDERFARM} = {1 if urls else 0}"
    if not text:
        return "\n".join(["[GENERAL]", flag] + _block(urls)) + "\n"

    lines = _scan(text)
    pairs = [(line.text, line.eol) for line in lines]
    crlf = sum(1 for line in lines if line.eol == "\r\n")
    eol = "\r\n" if crlf > len(lines) - crlf else "\n"

    # Every [GENERAL] section counts (and the lines before the first header):
    # the first of each setting is rewritten, later ones (which would win) go.
    general = [i for i, line in enumerate(lines) if line.section == GENERAL]
    flags = [i for i in general if lines[i].kind == "setting" and lines[i].tag == RENDERFARM]
    remotes = [i for i in general if lines[i].kind == "setting" and lines[i].tag == REMOTE_RENDERER]
    continuations = [
        i for i in general if lines[i].kind == "continuation" and lines[i].tag in (RENDERFARM, REMOTE_RENDERER)
    ]
    replaced: dict[int, list[str]] = {}
    if flags:
        replaced[flags[0]] = [_keep_key(lines[flags[0]].text, "1" if urls else "0")]
    if remotes:
        replaced[remotes[0]] = _block(urls, _keep_key(lines[remotes[0]].text, ""))
    if not flags and not remotes:
        header = next((i for i in general if lines[i].kind == "header"), None)
        if header is None:  # no [GENERAL] at all: put one on top
            at = _insertion_point(lines, 0)
            top = ["[GENERAL]", flag] + _block(urls) + ([] if at < len(lines) and lines[at].kind == "blank" else [""])
            return _join(pairs[:at], eol) + "".join(row + eol for row in top) + _join(pairs[at:], eol)
        at = _insertion_point(lines, header + 1)
        if at == header + 1:
            replaced[header] = [lines[header].text, flag] + _block(urls)
        else:
            replaced[at - 1] = [lines[at - 1].text, flag] + _block(urls)
    elif not flags:
        replaced[remotes[0]] = [flag] + replaced[remotes[0]]
    elif not remotes:
        replaced[flags[0]] += _block(urls)
    dropped = set(flags[1:] + remotes[1:] + continuations)
    result: list[tuple[str, str]] = []
    for index, (content, ending) in enumerate(pairs):
        if index in replaced:
            result += [(row, ending or eol) for row in replaced[index]]
        elif index not in dropped:
            result.append((content, ending))
    return _join(result, eol)


def _insertion_point(lines: list[_Line], at: int) -> int:
    """Where new settings can go from ``at`` on without taking the indented lines below as their continuation.

    That is ``at`` itself, unless indented lines (which continue nothing
    now) follow before the next unindented one: then after those.
    """
    index = at
    indented = False
    while index < len(lines) and lines[index].kind != "header":
        line = lines[index]
        if line.kind not in ("blank", "comment"):
            if not line.text[:1].isspace():
                break
            indented = True
        index += 1
    return index if indented else at


def _join(pairs: list[tuple[str, str]], eol: str) -> str:
    return "".join(content + (ending or eol) for content, ending in pairs)


def _keep_key(text: str, value: str) -> str:
    """``text``'s ``key =`` part (the admin's spelling and spacing) followed by ``value``."""
    stripped = text.strip()
    eq = stripped.index("=")
    if not value:
        return stripped[: eq + 1]
    after = stripped[eq + 1:]
    spacing = after[: len(after) - len(after.lstrip())] if after.strip() else " "
    return stripped[: eq + 1] + spacing + value


def plan_renderfarm(path: str, renderers: t.Sequence[str]) -> RenderFarmUpdate:
    """What write_renderfarm would do, without doing it: before and after text, and whether it changes.

    It changes only when the set of renderers or the on/off flag differs from
    the file's; a different order or spelling of the same set is no change.
    """
    text = _read(path)
    old = EMPTY if text is None else parse_renderfarm(text)
    urls = _clean(renderers)
    new = RenderFarm(enabled=bool(urls), renderers=tuple(urls))
    before = text or ""
    if old.enabled == new.enabled and set(old.renderers) == set(new.renderers):
        return RenderFarmUpdate(False, before, before, old, old)
    return RenderFarmUpdate(True, before, render_renderfarm(text, urls), old, new)


def update_renderfarm(path: str, renderers: t.Sequence[str], *, check: bool = False) -> RenderFarmUpdate:
    """Set the render farm in ``path`` to ``renderers``; write atomically, and only when it changes."""
    plan = plan_renderfarm(path, renderers)
    if plan.changed and not check:
        write_atomic(path, plan.after.encode("utf-8", "surrogateescape"))
    return plan


def write_renderfarm(path: str, renderers: t.Sequence[str], *, check: bool = False) -> bool:
    """Set the render farm in ``path`` to ``renderers``; True when it changed (or would, with ``check``)."""
    return update_renderfarm(path, renderers, check=check).changed
