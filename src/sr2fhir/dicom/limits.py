"""Bounds against hostile input (--max-depth, --max-items): a module of its own, light to import."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds against hostile input."""

    max_depth: int = 64
    max_items: int = 250_000
    """About 5 kB of memory per item at the peak: the default bounds one report to about 1.3 GB
    (the largest real report seen has 4,603 items; raise it with --max-items for bigger ones)."""
