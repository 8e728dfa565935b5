"""Known defects of the IG itself (known_ig_defects.json): one list for every tool that judges output.

A finding caused by the IG rather than by the input (an ambiguous slicing, a typo'd fixed value)
is reported as such and, unless the user asks otherwise (`--fail-on-ig-defects`), does not fail
`--strict`, `--validate` or `validate`. The same file is read by scripts/official-validator.sh
and by the HAPI launcher (hapi/), so the three never disagree. docs/conformance.md explains each.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources


@dataclass(frozen=True, slots=True)
class Defect:
    id: str
    title: str
    rules: tuple[str, ...]
    messages: tuple[str, ...]


@functools.cache
def defects() -> tuple[Defect, ...]:
    data = json.loads(resources.files(__package__).joinpath("known_ig_defects.json").read_text(encoding="utf-8"))
    return tuple(Defect(d["id"], d["title"], tuple(d["rules"]), tuple(d["messages"])) for d in data["defects"])


def for_rule(rule: str) -> str | None:
    """The id of the known defect a conversion diagnostic rule stands for, if any."""
    return next((d.id for d in defects() if rule in d.rules), None)


def for_message(message: str) -> str | None:
    """The id of the known defect a validator message reports, if any."""
    return next((d.id for d in defects() if any(m in message for m in d.messages)), None)
