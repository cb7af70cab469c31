"""Spearman's rho and Kendall's tau-b with their two-sided p-values, in plain Python.

The report and the zoo need two rank correlations over a few dozen entries; scipy.stats gives
them but takes ~1.7 s to import, more than all their arithmetic. These follow scipy's
definitions (``spearmanr``: Pearson's r of average ranks, p from Student's t with n - 2 degrees
of freedom; ``kendalltau``: tau-b, p exact without ties for n <= 33, else the tie-corrected
normal approximation), and tests/test_report_speed.py checks them against scipy where it is
installed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def average_ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks, ties sharing the mean of the ranks they span."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    """Pearson's r (NaN when either series is constant)."""
    n = len(x)
    mx, my = sum(x) / n, sum(y) / n
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y))
    sxx = sum((a - mx) ** 2 for a in x)
    syy = sum((b - my) ** 2 for b in y)
    if sxx == 0 or syy == 0:
        return math.nan
    return max(-1.0, min(1.0, sxy / math.sqrt(sxx * syy)))


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1, a - 1
    c, d = 1.0, 1 - qab * x / qap
    d = 1 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1 + aa * d
        d = 1 / (d if abs(d) > tiny else tiny)
        c = 1 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1 + aa * d
        d = 1 / (d if abs(d) > tiny else tiny)
        c = 1 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                     + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1) / (a + b + 2):
        return front * _betacf(a, b, x) / a
    return 1 - front * _betacf(b, a, 1 - x) / b


def spearman(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """(rho, two-sided p) as ``scipy.stats.spearmanr`` gives them."""
    n = len(x)
    rho = pearson(average_ranks(x), average_ranks(y))
    if math.isnan(rho) or n < 3:
        return rho, math.nan
    df = n - 2
    if abs(rho) >= 1:
        return rho, 0.0
    t2 = rho * rho * df / ((1 - rho) * (1 + rho))
    return rho, _betainc(df / 2, 0.5, df / (df + t2))


def _dense(values: Sequence[float]) -> list[int]:
    index = {v: i for i, v in enumerate(sorted(set(values)))}
    return [index[v] for v in values]


def _ties(ranks: Sequence[int]) -> tuple[int, int, int]:
    counts: dict[int, int] = {}
    for r in ranks:
        counts[r] = counts.get(r, 0) + 1
    cs = [c for c in counts.values() if c > 1]
    return (sum(c * (c - 1) // 2 for c in cs), sum(c * (c - 1) * (c - 2) for c in cs),
            sum(c * (c - 1) * (2 * c + 5) for c in cs))


def _kendall_exact_p(n: int, c: int) -> float:
    """Two-sided exact p of c = min(discordant, concordant) pairs among n untied values: the
    share of permutations of n with at most c inversions, doubled."""
    counts = [1]  # permutations of k items by number of inversions (Mahonian numbers)
    for k in range(2, n + 1):
        nxt = [0] * (len(counts) + k - 1)
        window = 0
        for j in range(len(nxt)):
            window += counts[j] if j < len(counts) else 0
            if j - k >= 0 and j - k < len(counts):
                window -= counts[j - k]
            nxt[j] = window
        counts = nxt
    return min(1.0, 2 * sum(counts[: c + 1]) / math.factorial(n))


def kendall(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """(tau-b, two-sided p) as ``scipy.stats.kendalltau`` gives them (method "auto")."""
    n = len(x)
    xr, yr = _dense(x), _dense(y)
    con = dis = xtie = ytie = ntie = 0
    for i in range(n):
        for j in range(i + 1, n):
            dx, dy = xr[i] - xr[j], yr[i] - yr[j]
            if dx == 0 and dy == 0:
                ntie += 1
            if dx == 0:
                xtie += 1
            if dy == 0:
                ytie += 1
            if dx * dy > 0:
                con += 1
            elif dx * dy < 0:
                dis += 1
    tot = n * (n - 1) // 2
    if n < 2 or xtie == tot or ytie == tot:
        return math.nan, math.nan
    tau = (con - dis) / math.sqrt(tot - xtie) / math.sqrt(tot - ytie)
    tau = max(-1.0, min(1.0, tau))
    if xtie == 0 and ytie == 0 and (n <= 33 or min(dis, tot - dis) <= 1):
        return tau, _kendall_exact_p(n, min(dis, tot - dis))
    _, x0, x1 = _ties(xr)
    _, y0, y1 = _ties(yr)
    m = n * (n - 1.0)
    var = ((m * (2 * n + 5) - x1 - y1) / 18 + (2 * xtie * ytie) / m
           + x0 * y0 / (9 * m * (n - 2)))
    z = (con - dis) / math.sqrt(var)
    return tau, math.erfc(abs(z) / math.sqrt(2))


__all__ = ["average_ranks", "kendall", "pearson", "spearman"]
