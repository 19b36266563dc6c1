"""Sizes and durations as a person reads them (the CLI, the report, progress lines)."""

from __future__ import annotations

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def human_size(n: int | float) -> str:
    """1536 -> '1.5 KiB'; byte counts under 1 KiB stay exact."""
    value = float(n)
    for unit in _UNITS:
        if abs(value) < 1024 or unit == _UNITS[-1]:
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} {_UNITS[-1]}"  # not reached


def human_duration(seconds: float) -> str:
    """3725 -> '1 h 2 min'; short runs keep a tenth of a second."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def percent(part: float, whole: float) -> str:
    return "–" if whole <= 0 else f"{100.0 * part / whole:.1f}%"
