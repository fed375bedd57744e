"""Built-in value estimator 'demo_value': each example's effect as a demonstration, from random-search candidates.

Every candidate program random search evaluates is an experiment: a set of demos (stored example ids) and a
score on a fixed validation set. Within each pool of candidates scored on the same validation set, a ridge
regression of candidate score on demo-inclusion indicators (centered, so an example is measured against an
average demo of its pool) estimates what including each example adds, in metric points; the pools are then
combined by inverse-variance weighting (the datamodels idea, on the candidates DSPy already evaluates). The
standard error is the usual ridge one (residual variance from the fit); it understates uncertainty when
candidates are few, so a signal needs `min_candidates` candidates in a pool and reports its observations: the
number of candidates that showed the example.

Settings (`[plugin.demo_value]`): `ridge` (penalty, default 1.0), `min_candidates` (per pool, default 6).
It also marks stored values stale when an example is edited, re-scored or changes status.
"""

from __future__ import annotations

import math
from typing import Any

from dspy_trainkit import hookimpl
from dspy_trainkit.pluginkit import ValueSignal, unknown_settings

NAME = "demo_value"
DEFAULTS: dict[str, Any] = {"ridge": 1.0, "min_candidates": 6}
#: Events after which a stored value no longer describes the example.
CHANGING = ("edited", "status_changed", "rescored", "archived")


@hookimpl
def value_signals(task: str, evidence: Any, context: Any) -> list[ValueSignal] | None:
    settings = unknown_settings(NAME, context.plugin_settings(NAME, task), DEFAULTS)
    penalty, minimum = float(settings["ridge"]), int(settings["min_candidates"])
    estimates: dict[str, list[tuple[float, float | None, int, dict[str, Any]]]] = {}
    for pool in evidence.pools():
        if len(pool.candidates) < minimum:
            continue
        for example_id, estimate in ridge_estimates(pool.demo_sets(), [c["score"] for c in pool.candidates],
                                                    penalty).items():
            estimates.setdefault(example_id, []).append((*estimate, {"pool": pool.key}))
    if not estimates:
        return None
    return [_combined(example_id, found) for example_id, found in estimates.items()]


@hookimpl
def on_data_changed(event: Any, context: Any) -> None:
    if event.kind in CHANGING and event.example_ids:
        context.store.mark_values_stale(list(event.example_ids))


def ridge_estimates(demo_sets: list[list[str]], scores: list[float], penalty: float,
                    ) -> dict[str, tuple[float, float | None, int]]:
    """`{example id: (effect, standard error or None, candidates including it)}` from one pool.

    Ridge regression of the centered scores on centered inclusion indicators, solved in the dual (one n x n
    system for n candidates), using that the indicator matrix is sparse (a candidate shows a handful of demos):
    a pool of a thousand candidates over ten thousand examples is one 1000 x 1000 solve and a few passes over
    the demo lists, never a dense 1000 x 10000 product (benchmarks/valuation.py)."""
    import numpy as np

    ids = sorted({i for demos in demo_sets for i in demos})
    if not ids:
        return {}
    column = {example_id: n for n, example_id in enumerate(ids)}
    n, p = len(demo_sets), len(ids)
    rows = np.fromiter((r for r, demos in enumerate(demo_sets) for _ in demos), dtype=np.int64)
    cols = np.fromiter((column[i] for demos in demo_sets for i in demos), dtype=np.int64)
    included = np.bincount(cols, minlength=p)
    mean = included / n  # column means of the indicators
    # every (candidate a, candidate b, example j) with both candidates showing j, from the entries sorted by
    # example: X @ X.T and the per-example quadratic forms below are sums over these pairs
    order = np.argsort(cols, kind="stable")
    sorted_rows, sorted_cols = rows[order], cols[order]
    starts = np.concatenate(([0], np.cumsum(included)[:-1]))
    width = included[sorted_cols]  # for each entry, how many candidates show its example
    pair_a = np.repeat(sorted_rows, width)
    offsets = np.arange(len(pair_a)) - np.repeat(np.cumsum(width) - width, width)
    pair_b = sorted_rows[np.repeat(starts[sorted_cols], width) + offsets]
    pair_j = np.repeat(sorted_cols, width)

    def x_times(vector: Any) -> Any:  # X @ vector, X the n x p indicators
        return np.bincount(rows, weights=vector[cols], minlength=n)

    def xt_times(vector: Any) -> Any:  # X.T @ vector
        return np.bincount(cols, weights=vector[rows], minlength=p)

    shared = np.bincount(pair_a * n + pair_b, minlength=n * n).reshape(n, n).astype(float)  # X @ X.T
    s = x_times(mean)
    gram = shared - s[:, None] - s[None, :] + float(mean @ mean)  # Xc @ Xc.T
    y = np.asarray(scores, dtype=float)
    yc = y - y.mean()
    inverse = np.linalg.inv(gram + penalty * np.eye(n))
    alpha = inverse @ yc
    beta = xt_times(alpha) - mean * alpha.sum()  # Xc.T @ alpha
    residual = yc - (x_times(beta) - float(mean @ beta))
    freedom = n - float(np.sum(gram * inverse))  # n - trace(gram @ inverse); both symmetric
    sigma2 = float(residual @ residual) / freedom if freedom > 1 else math.nan
    # ||inverse @ xc_j||^2 = x_j' S x_j - 2 mean_j x_j' S 1 + mean_j^2 1' S 1, with S = inverse @ inverse
    square = inverse @ inverse
    quadratic = np.bincount(pair_j, weights=square[pair_a, pair_b], minlength=p)
    cross = xt_times(square.sum(axis=1))
    spread = np.sqrt(np.maximum(quadratic - 2 * mean * cross + mean * mean * float(square.sum()), 0.0))
    # an example shown by every candidate (or by none) cannot be told from the rest: no estimate for it
    return {example_id: (float(beta[j]), float(math.sqrt(sigma2) * spread[j]) if math.isfinite(sigma2) else None,
                         int(included[j])) for j, example_id in enumerate(ids) if 0 < included[j] < n}


def _combined(example_id: str, found: list[tuple[float, float | None, int, dict[str, Any]]]) -> ValueSignal:
    weighted = [(v, s) for v, s, _, _ in found if s is not None and s > 0]
    if weighted:
        weights = [1 / (s * s) for _, s in weighted]
        value = sum(w * v for w, (v, _) in zip(weights, weighted, strict=True)) / sum(weights)
        stderr: float | None = math.sqrt(1 / sum(weights))
    else:
        value, stderr = sum(v for v, _, _, _ in found) / len(found), None
    return ValueSignal(example_id=example_id, signal=NAME, value=round(value, 6),
                       stderr=None if stderr is None else round(stderr, 6),
                       observations=sum(n for _, _, n, _ in found),
                       detail={"pools": [d["pool"] for _, _, _, d in found]})
