"""Channel and index URLs: name → URL, local paths → file:// URLs, and credential redaction."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

DEFAULT_CHANNEL_ALIAS = "https://conda.anaconda.org"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*(/label/[A-Za-z0-9_.-]+)?$")


def channel_url(
    channel: str, base_dir: Path, local_channels: Mapping[str, Path] | None = None
) -> str:
    """The URL of ``channel``: a local-channel name becomes the ``file://`` URL of its built
    directory (``local_channels``), another name (``conda-forge``) its anaconda.org URL, a
    relative or absolute local path ``file://``; URLs are kept. No trailing slash.

    ``base_dir`` is where relative paths are taken from (the manifest's directory).
    """
    channel = channel.strip()
    if local_channels and channel in local_channels:
        return local_channels[channel].resolve().as_uri()
    if "://" in channel:
        return channel.rstrip("/")
    if channel.startswith((".", "/", "~")):
        return (base_dir / Path(channel).expanduser()).resolve().as_uri()
    if _NAME.match(channel):
        return f"{DEFAULT_CHANNEL_ALIAS}/{channel}"
    raise ValueError(channel)


def is_valid_channel(channel: str) -> bool:
    """True if ``channel`` is a name, a path or a URL that :func:`channel_url` accepts."""
    channel = channel.strip()
    return bool(channel) and (
        "://" in channel or channel.startswith((".", "/", "~")) or bool(_NAME.match(channel))
    )


def strip_userinfo(url: str) -> str:
    """``url`` without its ``user:password@`` part (a ``/t/<token>/`` path is kept). An ssh
    URL (``git+ssh://git@host/...``) keeps its user name, which is not a secret (ssh
    authenticates with keys) and without which the URL means another account."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url  # untouched: urlunsplit would turn git+file:///x into git+file:/x
    userinfo, _, hostport = parts.netloc.rpartition("@")
    kept = _kept_user(parts.scheme, userinfo)
    return urlunsplit(parts._replace(netloc=f"{kept}@{hostport}" if kept else hostport))


def _kept_user(scheme: str, userinfo: str) -> str:
    """What of ``userinfo`` a public URL keeps: the user name of an ssh URL, else nothing."""
    return userinfo.partition(":")[0] if scheme.lower().endswith("ssh") else ""


def redact_url(url: str) -> str:
    """``url`` without any ``user:password@`` part and without a token path (``/t/<token>/``)."""
    url = strip_userinfo(url)
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not _TOKEN_PATH.search(parts.path):
        return url  # a local path may well have a directory named t
    return urlunsplit(parts._replace(path=_TOKEN_PATH.sub("", parts.path, count=1)))


# A conda token path: /t/<token> right after the host (as in redact_text), followed by the
# channel's path or ending the URL.
_TOKEN_PATH = re.compile(r"^/t/[^/]+(?=/|$)")


# The userinfo ends at the LAST "@" of the authority: a raw "@" in a password is redacted too.
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<userinfo>[^/\s?#]+)@")
_TOKEN = re.compile(r"(?P<scheme>://[^/\s]+)/t/[^/\s'\"()<>]+(?=[/\s'\"()<>]|$)")


def _redact_userinfo(match: re.Match[str]) -> str:
    kept = _kept_user(match["scheme"], match["userinfo"])
    return f"{match['scheme']}://" + (f"{kept}@" if kept else "")


def redact_text(text: str, mark: bool = True) -> str:
    """``text`` (a message, a log line) with credentials removed from every URL in it;
    everything else, line breaks included, is kept. A token path shows as ``/t/***`` (so a
    message says a token was sent), or is dropped with ``mark=False`` (for data)."""
    return _TOKEN.sub(
        r"\g<scheme>/t/***" if mark else r"\g<scheme>", _USERINFO.sub(_redact_userinfo, text)
    )


def portable_url(url: str, root: Path) -> str:
    """A ``file://`` URL inside the workspace ``root`` as a path relative to it (a built
    local channel, a find-links directory of the workspace), so that a lock does not
    depend on where the workspace lives; any other URL unchanged."""
    if not url.startswith("file:"):
        return url
    from urllib.parse import unquote

    path = unquote(urlsplit(url).path)
    base = _real_root(root) if root.is_absolute() else str(root.resolve())  # cwd may change
    if path != base and not path.startswith(base.rstrip("/") + "/"):
        return url  # outside the workspace (the common case: no Path objects, no exception)
    return Path(path).relative_to(base).as_posix()


@functools.lru_cache(maxsize=64)
def _real_root(root: Path) -> str:
    """``root`` resolved, once per process: every package URL of every lock goes through
    :func:`portable_url`, and resolving costs syscalls (60 locks: ~50 ms)."""
    return str(root.resolve())


def absolute_url(url: str, root: Path) -> str:
    """The inverse of :func:`portable_url`: a workspace-relative path as a ``file://`` URL."""
    return url if "://" in url or not url else (root / url).resolve().as_uri()
