"""Batching for the models: texts grouped by token count so little is spent on padding.

Used by every model that runs on ONNX Runtime (the Detoxify fast path, the sentence embeddings).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

__all__ = ["available_cores", "plan_batches", "spread_batches"]


def plan_batches(lengths: Sequence[int], max_batch: int, overhead_tokens: int = 32,
                 sort: bool = True) -> list[list[int]]:
    """Indices of texts grouped into batches of at most ``max_batch``, padding kept small.

    With ``sort``: texts are ordered by token count and the sorted run is cut where it costs least
    (dynamic programming: a batch costs its padded tokens, ``len(batch) * longest``, plus
    ``overhead_tokens`` for the call itself), so short texts are never padded to a long one's
    length. Without: fixed batches in the given order (what stock Detoxify does).
    """
    n = len(lengths)
    if not sort:
        return [list(range(s, min(s + max_batch, n))) for s in range(0, n, max_batch)]
    order = sorted(range(n), key=lambda i: (lengths[i], i))
    ordered = [lengths[i] for i in order]
    best = [0] + [0] * n  # best[j]: least cost of the first j sorted texts
    cut = [0] * (n + 1)
    for j in range(1, n + 1):
        longest = ordered[j - 1]
        choice, cost = j - 1, None
        for i in range(max(0, j - max_batch), j):
            c = best[i] + (j - i) * longest + overhead_tokens
            if cost is None or c < cost:
                choice, cost = i, c
        best[j], cut[j] = int(cost or 0), choice
    batches: list[list[int]] = []
    j = n
    while j > 0:
        batches.append(order[cut[j]:j])
        j = cut[j]
    batches.reverse()
    return batches


def available_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def spread_batches(plan: list[list[int]], lengths: Sequence[int],
                   workers: int) -> list[list[int]]:
    """``plan``'s batches, most work first, the biggest halved until every worker has one.

    Most work first, so the batches run side by side finish at about the same time; a call with
    fewer batches than workers (one short burst of comments) is split so no core sits idle.
    """
    def work(batch: list[int]) -> int:
        return len(batch) * max(lengths[i] for i in batch)

    batches = [list(b) for b in plan if b]
    while 0 < len(batches) < workers:
        biggest = max(batches, key=work)
        if len(biggest) < 2:
            break
        batches.remove(biggest)
        half = len(biggest) // 2  # in a token-ordered plan each half keeps its padding low
        batches += [biggest[:half], biggest[half:]]
    return sorted(batches, key=work, reverse=True)
