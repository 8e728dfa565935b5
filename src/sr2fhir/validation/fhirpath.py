"""FHIRPath invariants with fhirpathpy (R5 model), plus the `hasValue()` it lacks."""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Callable

from fhirpathpy import compile as fp_compile
from fhirpathpy.models import models

_OPTIONS = {
    "userInvocationTable": {
        "hasValue": {"fn": lambda inputs: [len(inputs) == 1 and inputs[0] is not None], "arity": {0: []}},
        # trace() prints to stdout in fhirpathpy (dom-3 uses it): keep it silent.
        "trace": {"fn": lambda inputs, *args: inputs, "arity": {0: [], 1: ["String"], 2: ["String", "Expr"]}},
    }
}


@lru_cache(maxsize=512)
def _compiled(expression: str) -> Callable[..., list[Any]]:
    return fp_compile(expression, models["r5"], _OPTIONS)


def evaluate(node: Any, expression: str, resource: dict[str, Any]) -> bool | None:
    """True/False for a boolean invariant on `node`; None when it cannot be evaluated."""
    try:
        result = _compiled(expression)(node, {"resource": resource, "rootResource": resource})
    except Exception:  # an expression fhirpathpy does not implement: not judged
        return None
    if result == [] or result is None:
        return None
    first = result[0]
    return first if isinstance(first, bool) else None
