"""Channel and index URLs: name → URL, local paths → file:// URLs, and credential redaction."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

DEFAULT_CHANNEL_ALIAS = "https://conda.anaconda.org"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*(/label/[A-Za-z0-9_.-]+)?$")


def channel_url(channel: str, base_dir: Path) -> str:
    """The URL of ``channel``: a name (``conda-forge``) becomes its anaconda.org URL, a
    relative or absolute local path becomes ``file://``, URLs are kept. No trailing slash.

    ``base_dir`` is where relative paths are taken from (the manifest's directory).
    """
    channel = channel.strip()
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


def redact_url(url: str) -> str:
    """``url`` without any ``user:password@`` part and without a token path (``/t/<token>/``)."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    path = re.sub(r"/t/[^/]+/", "/", parts.path)
    return urlunsplit((parts.scheme, netloc, path, parts.query, parts.fragment))
