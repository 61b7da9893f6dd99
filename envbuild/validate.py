"""Checks of single manifest values (index URLs, python versions, virtual packages), and
how a value is quoted in a message. Pure: no I/O."""

from __future__ import annotations

import json
import re
from typing import Any

VIRTUAL_NAME = re.compile(r"^__[a-z0-9][a-z0-9_]*$")
VIRTUAL_VERSION = re.compile(r"^[0-9]+(\.[0-9A-Za-z_]+)*(=[A-Za-z0-9_.+]+)?$")
PYTHON_VERSION = re.compile(
    r"^(==|>=|<=|!=|~=|=|>|<)?\s*[0-9]+(\.[0-9]+(\.[0-9]+)?([a-z]+[0-9]*)?)?(\.\*)?$"
)
NOT_URL = (
    "{} is not an index URL: write http://, https:// or file:// and a host or path, "
    "like https://pypi.org/simple"
)


def shown(value: str) -> str:
    """``value`` quoted for a message, control characters escaped (never printed raw)."""
    return json.dumps(value, ensure_ascii=False) if not value.isprintable() else f"'{value}'"


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return json.dumps(value)
    return str(value)


def has_location(url: str) -> bool:
    """A URL names a host (or, for file: URLs, a path)."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return bool(parts.netloc or (parts.scheme == "file" and parts.path))


def is_index_url(value: str) -> bool:
    """True for an http(s) URL with a host, or a file: URL with a path. Environment
    variables (``$NAME``, ``${NAME}``, expanded when the resolver runs) count as text; a
    value that is one variable is taken as it comes."""
    from urllib.parse import urlsplit

    if re.fullmatch(r"\$\{?\w+\}?", value):
        return True
    value = re.sub(r"\$\{?\w+\}?", "x", value)

    try:
        url = urlsplit(value)
        url.port  # noqa: B018  # raises ValueError on a port that is not a number
    except ValueError:
        return False
    if any(c.isspace() for c in value) or not value.isprintable():
        return False
    if url.scheme in ("http", "https"):
        return bool(url.hostname)
    return url.scheme == "file" and bool(url.path)


def is_python_version(value: str) -> bool:
    """True for the python version specs envbuild reads: ``3.11``, ``3.11.4``, ``>=3.10``,
    ``3.12.*`` and ranges of them joined by ``,`` or ``|``."""
    return all(PYTHON_VERSION.match(p.strip()) for p in re.split(r"[,|]", value))
