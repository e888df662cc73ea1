"""Summary statistics written into results and evaluation JSON."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats


def summary(values: Any) -> dict[str, Any]:
    """Mean, std (population, as the paper's error bars) and a 95% Student-t interval of the
    mean over ``values``; the interval collapses to the mean for a single value."""
    x = np.asarray(values, dtype=float).ravel()
    n = len(x)
    if n == 0:
        return {"mean": float("nan"), "std": float("nan"), "ci95": [float("nan")] * 2, "n": 0}
    mean = float(x.mean())
    if n == 1:
        return {"mean": mean, "std": 0.0, "ci95": [mean, mean], "n": 1}
    half = float(stats.t.ppf(0.975, n - 1) * x.std(ddof=1) / np.sqrt(n))
    return {"mean": mean, "std": float(x.std()), "ci95": [mean - half, mean + half], "n": n}
