"""Building hostile inputs: a JSON document with one field replaced, wherever it is."""

from __future__ import annotations

import json
from typing import Any


def changed(document: dict[str, Any], path: tuple[str, ...], value: object) -> dict[str, Any]:
    """A deep copy of `document` with the field at `path` set to `value` (created if missing)."""
    copy: dict[str, Any] = json.loads(json.dumps(document))
    target = copy
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return copy
