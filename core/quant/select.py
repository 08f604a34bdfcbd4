"""Per-layer scheme selection as a 0-1 integer linear program (HiGHS), and the greedy baseline.

Variables ``x[l, c]`` (layer ``l`` takes candidate ``c``), one per row of ``Layer.candidates``:

    minimise    sum_lc  x[l, c] * error[l, c]
    subject to  sum_c   x[l, c] = 1                                  every layer one scheme
                sum_lc  x[l, c] * bytes[l, c]   <= max_bytes         (budget-bits, budget-mb)
                sum_lc  x[l, c] * latency[l, c] <= max_latency       (budget-latency-ms, less the rest)
                x[a, c] = x[b, c]                                    coupled layers, per scheme

Errors are the per-layer sensitivities (additive, as in HAWQ); a tiny byte term breaks ties toward
the smaller of two equally accurate choices.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import QCError


@dataclass
class Candidate:
    scheme: str
    bytes: int
    error: float
    latency_ms: float = 0.0


@dataclass
class Layer:
    name: str
    weights: int  # number of weight values (for bits per weight)
    candidates: list[Candidate]


@dataclass
class Problem:
    layers: list[Layer]
    max_bytes: float | None = None
    max_latency_ms: float | None = None
    groups: list[list[str]] = field(default_factory=list)  # coupled layer names: one decision each
    fixed_bytes: int = 0  # stored bytes no choice changes (messages name total MB)
    other_ms: float = 0.0  # time of the rest of the model (messages name the end-to-end budget)


@dataclass
class Solution:
    choice: dict[str, Candidate]

    @property
    def bytes(self) -> int:
        return sum(c.bytes for c in self.choice.values())

    @property
    def error(self) -> float:
        return sum(c.error for c in self.choice.values())

    @property
    def latency_ms(self) -> float:
        return sum(c.latency_ms for c in self.choice.values())


class Infeasible(QCError):
    pass


def solve(problem: Problem, time_limit_s: float = 60.0) -> Solution:
    """The optimum of ``problem``; ``Infeasible`` naming the smallest feasible budget otherwise."""
    import highspy

    _check_feasible(problem)
    cols = [(li, ci) for li, layer in enumerate(problem.layers) for ci in range(len(layer.candidates))]
    index = {lc: j for j, lc in enumerate(cols)}
    cands = [problem.layers[li].candidates[ci] for li, ci in cols]
    total = max(sum(max(c.bytes for c in layer.candidates) for layer in problem.layers), 1)
    scale = max(max((c.error for c in cands), default=0.0), 1e-30)
    cost = np.array([c.error / scale + 1e-7 * c.bytes / total for c in cands])

    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("time_limit", float(time_limit_s))
    h.setOptionValue("mip_rel_gap", 1e-4)
    n = len(cols)
    h.addCols(n, cost, np.zeros(n), np.ones(n), 0, np.array([], np.int32), np.array([], np.int32), np.array([]))
    h.changeColsIntegrality(n, np.arange(n, dtype=np.int32), np.array([highspy.HighsVarType.kInteger] * n))
    rows: list[tuple[float, float, list[int], list[float]]] = []
    for li, layer in enumerate(problem.layers):
        rows.append((1.0, 1.0, [index[li, ci] for ci in range(len(layer.candidates))], [1.0] * len(layer.candidates)))
    inf = highspy.kHighsInf
    if problem.max_bytes is not None:
        rows.append((-inf, float(problem.max_bytes), list(range(n)), [float(c.bytes) for c in cands]))
    if problem.max_latency_ms is not None:
        rows.append((-inf, float(problem.max_latency_ms), list(range(n)), [c.latency_ms for c in cands]))
    by_name = {layer.name: li for li, layer in enumerate(problem.layers)}
    for group in problem.groups:
        first = by_name[group[0]]
        for other in group[1:]:
            ob = by_name[other]
            mine = {c.scheme: ci for ci, c in enumerate(problem.layers[first].candidates)}
            theirs = {c.scheme: cj for cj, c in enumerate(problem.layers[ob].candidates)}
            for scheme in mine.keys() | theirs.keys():
                if scheme in mine and scheme in theirs:
                    rows.append((0.0, 0.0, [index[first, mine[scheme]], index[ob, theirs[scheme]]], [1.0, -1.0]))
                else:  # a scheme one of them cannot take is out for both
                    j = index[first, mine[scheme]] if scheme in mine else index[ob, theirs[scheme]]
                    rows.append((0.0, 0.0, [j], [1.0]))
    lower = np.array([r[0] for r in rows])
    upper = np.array([r[1] for r in rows])
    starts = np.cumsum([0] + [len(r[2]) for r in rows[:-1]]).astype(np.int32)
    h.addRows(len(rows), lower, upper, sum(len(r[2]) for r in rows), starts,
              np.array([i for r in rows for i in r[2]], np.int32), np.array([v for r in rows for v in r[3]]))
    h.run()
    status = h.getModelStatus()
    if status == highspy.HighsModelStatus.kInfeasible:
        raise Infeasible("the budgets cannot all be met together: " + _joint_hint(problem))
    if status not in (highspy.HighsModelStatus.kOptimal, highspy.HighsModelStatus.kTimeLimit) or \
            h.getInfo().primal_solution_status != 2:
        raise QCError(f"precision selection: the ILP solver ended with '{h.modelStatusToString(status)}'")
    x = np.asarray(h.getSolution().col_value)
    choice = {}
    for j, (li, ci) in enumerate(cols):
        if x[j] > 0.5:
            choice[problem.layers[li].name] = problem.layers[li].candidates[ci]
    return Solution(choice)


def _check_feasible(problem: Problem) -> None:
    """Each budget on its own, against every layer at its cheapest candidate; the message names the
    smallest feasible budget in the units qc-compile takes."""
    for layer in problem.layers:
        if not layer.candidates:
            raise QCError(f"precision selection: layer '{layer.name}' has no candidate scheme")
    for what, limit in (("bytes", problem.max_bytes), ("latency_ms", problem.max_latency_ms)):
        least = smallest(problem, what) if limit is not None else 0
        if limit is not None and least > limit:
            if what == "bytes":
                mb = round_up((least + problem.fixed_bytes) / 1e6)
                if not all(layer.weights for layer in problem.layers):  # a KV cache: bytes that are not weights
                    raise Infeasible(f"the memory budget cannot be met: the smallest feasible is budget-mb={mb}, "
                                     "every layer and the KV cache at its smallest candidate")
                weights = sum(layer.weights for layer in problem.layers)
                raise Infeasible(f"the weight budget cannot be met: the smallest feasible is budget-bits="
                                 f"{round_up(8 * least / weights)} (budget-mb={mb}), every layer at its smallest "
                                 "candidate")
            raise Infeasible(f"the latency budget cannot be met: the smallest feasible is budget-latency-ms="
                             f"{round_up(least + problem.other_ms)} (the fastest kernels, {least:.3f} ms, and "
                             f"{problem.other_ms:.3f} ms for the rest)")


def round_up(value: float, digits: int = 4) -> str:
    """``value`` rounded up to ``digits`` significant digits: a budget that is then feasible."""
    if value <= 0:
        return "0"
    step = 10.0 ** (math.floor(math.log10(value)) - digits + 1)
    return f"{float(f'{math.ceil(value / step - 1e-9) * step:.12g}'):g}"


def smallest(problem: Problem, what: str) -> float:
    """The least total ``what`` (``bytes`` or ``latency_ms``) any assignment reaches, coupled layers
    taking one scheme."""
    coupled = {name for g in problem.groups for name in g}
    by_name = {layer.name: layer for layer in problem.layers}
    total = sum(min(getattr(c, what) for c in layer.candidates) for layer in problem.layers
                if layer.name not in coupled)
    for group in problem.groups:
        options = [{c.scheme: getattr(c, what) for c in by_name[n].candidates} for n in group]
        common = set.intersection(*(set(o) for o in options))
        if not common:
            raise QCError(f"precision selection: the coupled layers {', '.join(group)} have no scheme in common")
        total += min(sum(o[s] for o in options) for s in common)
    return total


def _joint_hint(problem: Problem) -> str:
    """With both budgets: the fewest bytes reachable within the latency budget."""
    if problem.max_bytes is None or problem.max_latency_ms is None:
        return "no assignment satisfies them"
    relaxed = Problem([Layer(layer.name, layer.weights,
                             [Candidate(c.scheme, c.bytes, float(c.bytes), c.latency_ms) for c in layer.candidates])
                       for layer in problem.layers], None, problem.max_latency_ms, problem.groups)
    least = solve(relaxed).bytes
    weights = sum(layer.weights for layer in problem.layers)
    return (f"within the latency budget the smallest feasible is budget-bits={round_up(8 * least / weights)} "
            f"(budget-mb={round_up((least + problem.fixed_bytes) / 1e6)})")


def greedy(problem: Problem) -> Solution:
    """The usual greedy allocation by the same sensitivities: start every layer at its most accurate
    candidate, then take the step to a smaller candidate that costs the least error per byte saved
    until the byte budget holds (no latency budget, no coupling)."""
    choice = {layer.name: min(layer.candidates, key=lambda c: (c.error, c.bytes)) for layer in problem.layers}
    layers = {layer.name: layer for layer in problem.layers}
    while problem.max_bytes is not None and sum(c.bytes for c in choice.values()) > problem.max_bytes:
        best = None
        for name, now in choice.items():
            for c in layers[name].candidates:
                if c.bytes < now.bytes:
                    rate = (c.error - now.error) / (now.bytes - c.bytes)
                    if best is None or rate < best[0]:
                        best = (rate, name, c)
        if best is None:
            raise Infeasible("greedy: no smaller candidate left")
        choice[best[1]] = best[2]
    return Solution(choice)
