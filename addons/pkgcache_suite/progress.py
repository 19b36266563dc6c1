"""Progress of long runs (fetch, precache, expire, verify, import): one look for all of them.

On a terminal, rich draws the bars; anywhere else (cron, a systemd timer, a
pipe) a line at each tenth of the work.  A run of 63,000 files must not print
63,000 lines: per-file lines are for failures, or for everything with ``-v``.
Bars always end at 100%, and every run ends with a summary line.
"""

from __future__ import annotations

import sys
import time
from typing import IO, Any

from pkgcache_suite.units import human_duration, human_size


class CountProgress:
    """Files checked, for maintenance runs whose work is counted in files."""

    def __init__(self, label: str, total: int, tty: bool | None = None, out: IO[str] | None = None) -> None:
        self.label, self.total, self.done = label, total, 0
        self.out = out or sys.stderr
        self.tty = self.out.isatty() if tty is None else tty
        self.started = time.monotonic()
        self._bar: Any = None
        self._step = max(1, total // 10)
        if self.tty and total:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("files"), TimeRemainingColumn(), console=Console(file=self.out))
            self._bar.start()
            self._task = self._bar.add_task(label, total=total)
        elif total:
            print(f"{label}: {total} files", file=self.out, flush=True)

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(self._task, advance=n)
        elif self.done // self._step != (self.done - n) // self._step and self.done < self.total:
            print(f"{self.label}: {self.done}/{self.total} files", file=self.out, flush=True)

    def close(self) -> None:
        """The bar ends full: what was not looked at one by one was settled as a whole."""
        if self._bar is not None:
            self._bar.update(self._task, completed=self.total)
            self._bar.stop()
            self._bar = None
        print(f"{self.label}: {self.total} files in {human_duration(time.monotonic() - self.started)}",
              file=self.out, flush=True)


class TransferProgress:
    """Bytes of a run of downloads: overall bytes with throughput and ETA, failures as they happen."""

    def __init__(self, label: str, tty: bool | None = None, verbose: bool = False,
                 out: IO[str] | None = None) -> None:
        self.label, self.verbose = label, verbose
        self.out = out or sys.stderr
        self.tty = self.out.isatty() if tty is None else tty
        self.files = self.files_done = self.failed = 0
        self.total_bytes = self.bytes = 0
        self.started = time.monotonic()
        self._tenth = 0
        self._bar: Any = None
        self._console: Any = None

    def __enter__(self) -> TransferProgress:
        if self.tty:
            from rich.console import Console
            from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn,
                                       TransferSpeedColumn)

            self._console = Console(file=self.out)
            self._bar = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                                 TransferSpeedColumn(), TimeRemainingColumn(), console=self._console)
            self._bar.start()
            self._task = self._bar.add_task(self.label, total=None)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._bar is not None:
            self._bar.update(self._task, total=max(self.bytes, 1), completed=max(self.bytes, 1),
                             description=self._description())
            self._bar.stop()
            self._bar = None

    def expect(self, files: int = 1, size: int | None = None) -> None:
        """More work: files, and their bytes where known."""
        self.files += files
        self.total_bytes += max(size or 0, 0)
        if self._bar is not None:
            self._bar.update(self._task, total=max(self.total_bytes, self.bytes) or None,
                             description=self._description())

    def advance(self, n: int) -> None:
        self.bytes += n
        if self._bar is not None:
            if self.bytes > self.total_bytes:
                self.total_bytes = self.bytes
                self._bar.update(self._task, total=self.total_bytes)
            self._bar.update(self._task, advance=n)
        elif self.total_bytes:
            tenth = min(10, self.bytes * 10 // self.total_bytes)
            if tenth > self._tenth:
                self._tenth = tenth
                self._line(f"{self.label}: {tenth * 10}% ({human_size(self.bytes)} of "
                           f"{human_size(self.total_bytes)}, {self.files_done}/{self.files} files)")

    def finished(self, url: str, ok: bool, note: str = "") -> None:
        """One file is done; a line only when it failed, or with verbose."""
        self.files_done += 1
        if not ok:
            self.failed += 1
        if not ok or self.verbose:
            self._line(f"{'ok' if ok else 'FAILED'}: {url}" + (f" ({note})" if note else ""))
        if self._bar is not None:
            self._bar.update(self._task, description=self._description())

    def note(self, text: str) -> None:
        self._line(text)

    def summary(self) -> str:
        elapsed = time.monotonic() - self.started
        rate = self.bytes / elapsed if elapsed > 0 else 0.0
        return (f"{self.files_done - self.failed} files, {human_size(self.bytes)} in {human_duration(elapsed)} "
                f"({human_size(int(rate))}/s), {self.failed} failed")

    def _description(self) -> str:
        return f"{self.label} {self.files_done}/{self.files} files"

    def _line(self, text: str) -> None:
        if self._console is not None:
            self._console.print(text, markup=False, highlight=False)
        else:
            print(text, file=self.out, flush=True)
