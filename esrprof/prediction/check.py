"""Predicted against measured: every result record with a run, predicted for the device it ran
on, at the images it ran (each distinct LR shape traced once).

The device: ``gpu`` when given (a name, ``custom:``, or ``file:SPEC`` from ``esrprof
calibrate``); else the GPU the record names, matched to a known spec by its label. A CPU run
needs a calibrated CPU spec. The model is rebuilt from the record's spec and kwargs (shapes
only: weights are not needed).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from esrprof.errors import EsrprofError, UsageError
from esrprof.kinds import TIME_KINDS
from esrprof.prediction.gpus import GPUS, GpuSpec, gpu_spec
from esrprof.rankstats import pearson, spearman


@dataclass(frozen=True)
class CheckRow:
    source: str
    model: str
    device: str  # what the record ran on
    gpu: str  # the spec predicted for
    measured_ms: float
    predicted_ms: float
    images: int
    shares: tuple[tuple[str, float], ...]  # predicted time share by kind

    @property
    def ratio(self) -> float:
        return self.predicted_ms / self.measured_ms

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "shares": dict(self.shares), "ratio": self.ratio}


@dataclass(frozen=True)
class CheckReport:
    rows: tuple[CheckRow, ...]
    skipped: tuple[tuple[str, str], ...]  # (file, why)

    @property
    def spearman(self) -> float | None:
        if len(self.rows) < 3:
            return None
        rho = spearman([r.measured_ms for r in self.rows], [r.predicted_ms for r in self.rows])[0]
        return None if math.isnan(rho) else rho  # a constant series has no rank order

    @property
    def median_ratio(self) -> float | None:
        if not self.rows:
            return None
        ratios = sorted(r.ratio for r in self.rows)
        mid = len(ratios) // 2
        return ratios[mid] if len(ratios) % 2 else math.sqrt(ratios[mid - 1] * ratios[mid])

    def error_by_kind(self) -> list[tuple[str, float]]:
        """For each kind: the correlation, over the records, of its share of the predicted
        time with log(predicted / measured). Positive: the more of that kind a model has, the
        more it is over-predicted; negative: under-predicted. Needs three records."""
        if len(self.rows) < 3:
            return []
        logs = [math.log(r.ratio) for r in self.rows]
        out = []
        for kind in TIME_KINDS:
            shares = [dict(r.shares).get(kind, 0.0) for r in self.rows]
            if max(shares) - min(shares) < 1e-9:
                continue
            r = pearson(shares, logs)
            out.append((kind, 0.0 if math.isnan(r) else r))  # NaN: every ratio the same
        return sorted(out, key=lambda kv: -abs(kv[1]))

    def to_dict(self) -> dict[str, Any]:
        return {"rows": [r.to_dict() for r in self.rows],
                "skipped": [{"file": f, "why": w} for f, w in self.skipped],
                "spearman": self.spearman, "median_ratio": self.median_ratio,
                "error_by_kind": dict(self.error_by_kind())}


def gpu_of_record(environment: dict[str, Any]) -> GpuSpec | None:
    """The known spec whose label matches the record's GPU name, or None."""
    name = str(environment.get("gpu_name") or "").lower()
    if not name:
        return None
    best = None
    for spec in GPUS.values():
        words = spec.label.lower().replace("nvidia", "").replace("geforce", "").split()
        key = " ".join(w for w in words if not w.endswith("gb") and w not in ("sxm4", "sxm5",
                                                                               "sxm", "pcie"))
        if key and key in name and (best is None or len(spec.label) > len(best.label)):
            best = spec
    return best


def check(paths: Iterable[str | Path], gpu: str | GpuSpec | None = None) -> CheckReport:
    """Predicted against measured for every record in ``paths`` that has a measured runtime."""
    from esrprof.loading import build
    from esrprof.prediction.api import predict
    from esrprof.results import load_result

    forced = gpu_spec(gpu) if gpu is not None else None
    rows, skipped = [], []
    for path in paths:
        name = str(path)
        result = load_result(path)  # ResultFileError: a bad file is the user's to fix
        runtime = result.run_blocks().get("runtime") or {}
        if runtime.get("runtime_ms") is None:
            skipped.append((name, "no measured runtime (profile it with --run)"))
            continue
        env = result.environment
        spec = forced or gpu_of_record(env)
        if spec is None:
            where = "a CPU" if env.get("device") == "cpu" else f"{env.get('gpu_name')!r}"
            skipped.append((name, f"ran on {where}: give --gpu (a known GPU, or file:SPEC from "
                                  "esrprof calibrate on that device)"))
            continue
        if not result.model.spec:
            skipped.append((name, "the record names no model spec to rebuild"))
            continue
        try:
            model = build(result.model.spec, result.model.kwargs)
        except EsrprofError as exc:
            skipped.append((name, f"cannot rebuild {result.model.spec}: {exc}"))
            continue
        splits = runtime.get("splits") or {}
        split_ms, shares, images = [], {k: 0.0 for k in TIME_KINDS}, 0
        cache: dict[tuple[int, int], Any] = {}
        for split in splits.values():
            shapes = [tuple(s) for s in split.get("shapes") or ()]
            if not shapes:
                continue
            total = 0.0
            for shape in shapes:
                if shape not in cache:
                    try:
                        cache[shape] = predict(model, (1, 3, *shape), spec).runtime
                    except EsrprofError as exc:
                        cache[shape] = exc
                rt = cache[shape]
                if isinstance(rt, EsrprofError):
                    break
                total += rt.ms
                for k in rt.by_kind:
                    shares[k.kind] += k.ms
            else:
                split_ms.append(total / len(shapes))
                images += len(shapes)
                continue
            skipped.append((name, f"prediction failed: {cache[shape]}"))
            split_ms = []
            break
        if not split_ms:
            if not any(n == name for n, _ in skipped):
                skipped.append((name, "the run records no image shapes"))
            continue
        whole = sum(shares.values()) or 1.0
        rows.append(CheckRow(
            name, result.model.name, str(env.get("gpu_name") or env.get("hardware") or "?"),
            spec.label, float(runtime["runtime_ms"]), sum(split_ms) / len(split_ms), images,
            tuple((k, v / whole) for k, v in shares.items()),
        ))
    if not rows and not skipped:
        raise UsageError("no result files given")
    return CheckReport(tuple(rows), tuple(skipped))


__all__ = ["CheckReport", "CheckRow", "check", "gpu_of_record"]
