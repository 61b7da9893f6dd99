"""Checks of envbuild.toml values, each problem located as ``envbuild.toml:LINE: [table] key``."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from envbuild.channels import channel_url, is_valid_channel
from envbuild.parsers import NODEFAULTS, expand_defaults
from envbuild.parsers import binary as binary_options
from envbuild.platforms import ARCHS, check_arch
from envbuild.spec import MANIFEST
from envbuild.validate import (
    NOT_URL,
    VIRTUAL_NAME,
    VIRTUAL_VERSION,
    has_location,
    is_index_url,
    shown,
    toml_value,
)


def line_of(lines: list[str], table: str, key: str | None = None) -> int:
    """The 1-based line of ``[table]`` (or of ``key`` inside it); 0 if not found."""
    parts = [re.escape(p) for p in table.split(".")]
    header = re.compile(r"^\s*\[\s*" + r"\s*\.\s*".join(parts) + r"\s*\]")
    for i, line in enumerate(lines):
        if header.match(line):
            if key is None:
                return i + 1
            for j in range(i + 1, len(lines)):
                if lines[j].lstrip().startswith("["):
                    break
                if re.match(r"^\s*\"?" + re.escape(key) + r"\"?\s*=", lines[j]):
                    return j + 1
            return i + 1
    return 0


def line_of_prefix(lines: list[str], table: str) -> int:
    """The line of the first ``[table.…]`` header or ``table = …`` key; 0 if not found."""
    pattern = re.compile(
        r"^\s*(\[\s*" + re.escape(table) + r"\s*[.\]]|" + re.escape(table) + r"\s*=)"
    )
    return next((i + 1 for i, line in enumerate(lines) if pattern.match(line)), 0)


class Checker:
    """Collects problems with ``envbuild.toml:LINE: [table] key ...`` locations."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        self.problems: list[str] = []

    def add(self, table: str, key: str | None, message: str) -> None:
        line = line_of(self.lines, table, key)
        where = f"{MANIFEST}:{line}" if line else MANIFEST
        what = f"[{table}]" + (f" {key}" if key else "")
        self.problems.append(f"{where}: {what}: {message}")

    def in_order(self) -> list[str]:
        """The problems in the order of the lines they name (those of the manifest first,
        by line; others, such as a spec file's, after them as they came)."""

        def line(problem: str) -> int:
            head, _, rest = problem.partition(":")
            number = rest.partition(":")[0]
            return int(number) if head == MANIFEST and number.isdigit() else 1 << 30

        return sorted(self.problems, key=line)

    def keys(self, table: str, data: dict[str, Any], allowed: tuple[str, ...]) -> None:
        for key in data:
            if key not in allowed:
                self.add(table, key, f"unknown key '{key}': allowed keys are {', '.join(allowed)}")

    def str_list(self, table: str, data: dict[str, Any], key: str) -> tuple[str, ...] | None:
        value = data.get(key)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.add(table, key, f'must be a list of strings, like {key} = ["..."]')
            return None
        return tuple(dict.fromkeys(v.strip() for v in value if v.strip()))

    def string(self, table: str, data: dict[str, Any], key: str) -> str | None:
        value = data.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            self.add(table, key, f'must be a string, like {key} = "..."')
            return None
        return value.strip()

    def choice(
        self, table: str, data: dict[str, Any], key: str, options: tuple[str, ...]
    ) -> str | None:
        value = self.string(table, data, key)
        if value is not None and value not in options:
            self.add(table, key, f"'{value}' is not one of {', '.join(options)}")
            return None
        return value

    def archs(self, table: str, data: dict[str, Any]) -> tuple[str, ...] | None:
        archs = self.str_list(table, data, "archs")
        if archs is None:
            return None
        bad = [a for a in archs if not check_arch(a)]
        for a in bad:
            self.add(
                table, "archs", f"'{a}' is not a supported arch: use one of {', '.join(ARCHS)}"
            )
        if not archs:
            self.add(table, "archs", "must not be empty: list at least one arch")
        return None if bad or not archs else tuple(a for a in ARCHS if a in archs)

    def channels(
        self, table: str, data: dict[str, Any], local: dict[str, str]
    ) -> tuple[str, ...] | None:
        channels = self.str_list(table, data, "channels")
        if channels is None:
            return None
        out = []
        for ch in expand_defaults(channels):
            if ch == NODEFAULTS:
                self.add(
                    table,
                    "channels",
                    "'nodefaults' is for environment.yml: here the list is the whole list "
                    "already (envbuild adds no channel implicitly): remove it",
                )
            elif not is_valid_channel(ch) or ("://" in ch and not has_location(ch)):
                self.add(table, "channels", f"'{ch}' is not a channel name, path or URL")
            else:
                out.append(normalise_channel(ch, local))
        return tuple(out)

    def binary(self, table: str, data: dict[str, Any], key: str) -> tuple[str, ...] | None:
        """``only-binary`` / ``no-binary``: names or [":all:"]; None when not given."""
        values = self.str_list(table, data, key)
        if values is None:
            return None
        names, problems = binary_options.parse_list(values, key)
        for problem in problems:
            self.add(table, key, problem)
        return names

    def virtual(self, table: str, data: dict[str, Any]) -> dict[str, str]:
        value = data.get("virtual-packages", {})
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and k.startswith("__") and isinstance(v, str)
            for k, v in value.items()
        ):
            self.add(
                table, "virtual-packages", 'must map __names to versions, like __glibc = "2.28"'
            )
            return {}
        bad = False
        for name, version in value.items():
            if not VIRTUAL_NAME.match(name):
                bad = True
                self.add(
                    table,
                    "virtual-packages",
                    f"{shown(name)} is not a virtual package name: use __ and a-z, 0-9, '_', "
                    "like __glibc",
                )
            elif not VIRTUAL_VERSION.match(version.strip()):
                bad = True
                self.add(
                    table,
                    "virtual-packages",
                    f"{shown(version)} is not a version for {name}: write digits and dots, "
                    f'like {name} = "2.28" (or "VERSION=BUILD")',
                )
        return {} if bad else {k: v.strip() for k, v in value.items()}

    def seconds(self, table: str, data: dict[str, Any], key: str) -> float | None:
        """A positive, finite number of seconds; None when not given (or invalid)."""
        value = data.get(key)
        if value is None:
            return None
        if (
            not isinstance(value, (int, float))
            or isinstance(value, bool)
            or not math.isfinite(value)
            or value <= 0
        ):
            self.add(
                table,
                key,
                f"must be a positive number of seconds, like {key} = 120 (got {toml_value(value)})",
            )
            return None
        return float(value)

    def url(self, table: str, data: dict[str, Any], key: str) -> str | None:
        """An index URL (http, https or file); None when not given (or invalid)."""
        value = self.string(table, data, key)
        if value is None or is_index_url(value):
            return value
        self.add(table, key, NOT_URL.format(shown(value)))
        return None

    def urls(self, table: str, data: dict[str, Any], key: str) -> tuple[str, ...] | None:
        """A list of index URLs; the invalid ones are reported and left out."""
        values = self.str_list(table, data, key)
        if values is None:
            return None
        for value in values:
            if not is_index_url(value):
                self.add(table, key, NOT_URL.format(shown(value)))
        return tuple(v for v in values if is_index_url(v))

    def relative_dir(self, table: str, data: dict[str, Any], key: str) -> str | None:
        """A directory inside the workspace, as a relative path; None when not given."""
        value = self.string(table, data, key)
        if value is None:
            return None
        parts = value.replace("\\", "/").split("/")
        if not value or value.startswith(("/", "~")) or ".." in parts or ":" in parts[0]:
            self.add(
                table,
                key,
                f"{shown(value)} is outside the workspace: give a relative path inside it, "
                f'like {key} = "locks"',
            )
            return None
        return value

    def flag(self, table: str, data: dict[str, Any], key: str) -> bool | None:
        """A true/false key; None when not given."""
        value = data.get(key)
        if value is not None and not isinstance(value, bool):
            self.add(table, key, f"must be true or false, like {key} = true")
            return None
        return value

    def timestamp(self, table: str, data: dict[str, Any]) -> str | None:
        """``exclude-newer``: an RFC 3339 timestamp (a TOML datetime or a string), as UTC text."""
        import datetime

        value = data.get("exclude-newer")
        if value is None:
            return None
        if isinstance(value, str):
            try:
                value = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                value = None
        if isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
            value = datetime.datetime(value.year, value.month, value.day)
        if not isinstance(value, datetime.datetime):
            self.add(
                table,
                "exclude-newer",
                'must be a date-time, like exclude-newer = "2025-06-01T00:00:00Z"',
            )
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.UTC)
        return value.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def normalise_channel(channel: str, local: dict[str, str]) -> str:
    """A channel as kept in a spec: local-channel names and relative paths as written (so the
    req_id does not depend on where the workspace lives); other names expanded to their URL."""
    if channel in local or channel.startswith((".", "/", "~")) or "://" in channel:
        return channel.rstrip("/")
    return channel_url(channel, Path("."))
