"""Is a freshly computed metrics file consistent with the one already on disk?

NeMo Gym commits ``*_metrics.json`` files next to its data and refuses to overwrite one that
disagrees with a new computation; Gym applies the same rule. Every key of the old file must
still be there (new keys are fine), lists must hold the same elements in any order, floats may
differ by 5e-3 (5e-4 below 1 in magnitude) and anything else must be equal. A disagreement is
written beside the old file as ``<stem>_conflict.json``. Used by ``datasets.prepare``.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from nemo_gym.core.errors import InputDataError


def _close(a: float, b: float) -> bool:
    tolerance = 5e-3 if max(abs(a), abs(b)) >= 1 else 5e-4
    return abs(a - b) <= tolerance


def differences(old: Any, new: Any, path: str = "") -> list[str]:
    """What in ``new`` disagrees with ``old``, one line per difference (empty: consistent)."""
    where = path or "(top level)"
    if isinstance(old, dict) and isinstance(new, dict):
        found: list[str] = []
        for key, value in old.items():
            sub = f"{path}.{key}" if path else str(key)
            if key not in new:
                found.append(f"{sub}: missing from the new metrics")
            else:
                found.extend(differences(value, new[key], sub))
        return found
    if isinstance(old, list) and isinstance(new, list):
        if len(old) != len(new):
            return [f"{where}: {len(old)} elements before, {len(new)} now"]
        canon = Counter(json.dumps(v, sort_keys=True) for v in old)
        if canon != Counter(json.dumps(v, sort_keys=True) for v in new):
            return [f"{where}: the elements differ (order aside)"]
        return []
    if isinstance(old, float) and isinstance(new, float):
        return [] if _close(old, new) else [f"{where}: {old} before, {new} now"]
    return [] if old == new else [f"{where}: {old!r} before, {new!r} now"]


def conflict_path(metrics_path: Path) -> Path:
    return metrics_path.with_name(f"{metrics_path.stem}_conflict.json")


def check_against_existing(new: dict[str, Any], metrics_path: Path) -> list[str]:
    """Compare ``new`` with ``metrics_path`` if it exists; on a difference write the conflict
    file and return the differences (empty when the file is absent or consistent).

    Raises:
        InputDataError: the existing file is not a JSON object.
    """
    if not metrics_path.is_file():
        return []
    try:
        old = json.loads(metrics_path.read_text())
    except json.JSONDecodeError as exc:
        raise InputDataError(str(metrics_path), exc.lineno, f"not valid JSON ({exc.msg})") from None
    if not isinstance(old, dict):
        raise InputDataError(str(metrics_path), None, "a metrics file must be a JSON object")
    found = differences(old, new)
    if found:
        conflict_path(metrics_path).write_text(json.dumps(new, indent=4))
    return found
