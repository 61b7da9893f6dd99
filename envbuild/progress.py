"""Progress on a terminal: one status line, redrawn in place, that other lines pass above.
The one place envbuild asks whether a stream is a terminal (:func:`is_terminal`)."""

from __future__ import annotations

import shutil
import threading
from typing import ClassVar, TextIO


def is_terminal(stream: TextIO) -> bool:
    """True when ``stream`` is a terminal (progress is drawn in place); False for pipes and
    files (plain lines)."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False


_ACTIVE: list[StatusLine] = []  # the status line of the run in progress (at most one)


def active() -> StatusLine | None:
    """The status line a run draws on a terminal now, if any (for a stage's own progress)."""
    return _ACTIVE[-1] if _ACTIVE else None


class StatusLine:
    """A status line at the bottom of a terminal ``stream``. :meth:`write` is a file-like
    entry for everything else written to the stream: the status is cleared first and
    redrawn after each complete line. Thread-safe."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.text = ""
        self._lock = threading.Lock()

    def _draw(self) -> None:
        width = max(20, shutil.get_terminal_size().columns - 1)
        text = self.text if len(self.text) <= width else self.text[: width - 1] + "…"
        self.stream.write("\r\x1b[K" + text)
        self.stream.flush()

    def __enter__(self) -> StatusLine:
        _ACTIVE.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        self.clear()
        if self in _ACTIVE:
            _ACTIVE.remove(self)

    def show(self, text: str) -> None:
        with self._lock:
            self.text = text
            self._draw()

    def clear(self) -> None:
        with self._lock:
            if self.text:
                self.text = ""
                self._draw()

    def write(self, data: str) -> int:
        with self._lock:
            if self.text:
                self.stream.write("\r\x1b[K")
            self.stream.write(data)
            if self.text and data.endswith("\n"):
                self._draw()
            return len(data)

    def flush(self) -> None:
        self.stream.flush()


class Progress:
    """Which tasks of a stage run now, and how many of the stage's ``total`` are done,
    on a :class:`StatusLine` (``resolve 3/60 done; solving web@linux-64, api@osx-arm64``)."""

    VERBS: ClassVar[dict[str, str]] = {"resolve": "solving", "fetch": "fetching", "build": "building",
             "transmute": "transmuting", "upload": "uploading", "create": "creating",
             "channel": "building"}  # fmt: skip

    def __init__(self, status: StatusLine, totals: dict[str, int]) -> None:
        self.status = status
        self.totals = totals
        self.done: dict[str, int] = {}
        self.running: dict[str, list[str]] = {}
        self._lock = threading.Lock()

    def skip(self, stage: str) -> None:
        with self._lock:
            self.done[stage] = self.done.get(stage, 0) + 1
        self._show(stage)

    def start(self, stage: str, name: str) -> None:
        with self._lock:
            self.running.setdefault(stage, []).append(name)
        self._show(stage)

    def finish(self, stage: str, name: str) -> None:
        with self._lock:
            if name in self.running.get(stage, []):
                self.running[stage].remove(name)
            self.done[stage] = self.done.get(stage, 0) + 1
        self._show(stage)

    def _show(self, stage: str) -> None:
        with self._lock:
            running = list(self.running.get(stage, []))
            done, total = self.done.get(stage, 0), self.totals.get(stage, 0)
        text = f"{stage} {done}/{total} done"
        if running:
            text += f"; {self.VERBS.get(stage, 'running')} {', '.join(running)}"
        self.status.show(text)
