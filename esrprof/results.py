"""Result records: plain frozen dataclasses, one versioned JSON schema, safe writes.

Raw per-layer records are stored; every total and view is derived from them, so a record read
back from JSON gives the same totals as the one that was measured. Reading checks every value
it uses: a count or figure that makes no sense is one line naming the file and the field.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from esrprof import files, jsonio
from esrprof._version import __version__
from esrprof.challenges import challenge
from esrprof.counting.formulas import MAC_KINDS
from esrprof.errors import ResultFileError, UsageError
from esrprof.extras import require
from esrprof.jsonio import array, mapping, number, text
from esrprof.prediction.records import Prediction

if TYPE_CHECKING:  # pragma: no cover
    from esrprof.run import RunResult

SCHEMA_VERSION = 2
# What changed between versions; a reader refuses any version above SCHEMA_VERSION.
SCHEMA_HISTORY = {
    1: "first schema: model, input_shape, counts (params, buffers, ntire2022, complete, layers, "
    "peers), runtime, memory, quality, environment; later added, optional on reading: "
    "quality.split_notes, counts.ntire2024_layers, counts.ntire2024_divergences",
    2: "top-level 'challenge': the NTIRE year whose rules the figures follow (esrprof/"
    "challenges/); 'summary' FLOPs follow that year's convention. A version-1 file has none "
    "and reads as ntire2022",
}



@dataclass(frozen=True)
class ModelInfo:
    name: str
    spec: str | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)
    weights: str | None = None
    class_name: str = ""


@dataclass(frozen=True)
class OpRecord:
    """One aten op attributed to the innermost module that called it (complete convention)."""

    module: str
    module_type: str
    op: str
    kind: str
    calls: int
    macs: int
    output_elements: int


@dataclass(frozen=True)
class NtireRecord:
    """One hooked module of the ntire2022 convention, summed over its calls."""

    module: str
    module_type: str
    rule: str
    calls: int
    macs: int
    activations: int
    convs: int


@dataclass(frozen=True)
class Ntire2024Record:
    """One op as fvcore's FlopCountAnalysis counts it (ntire2024 convention), per module."""

    module: str
    module_type: str
    op: str  # the op as the JIT tracer records it, without "aten::" (PythonOp: a Function)
    calls: int
    macs: int


@dataclass(frozen=True)
class Ntire2024Divergence:
    module: str
    module_type: str
    ntire2024_macs: int
    complete_macs: int
    reason: str

    @property
    def difference(self) -> int:
        return self.ntire2024_macs - self.complete_macs


@dataclass(frozen=True)
class Divergence:
    module: str
    module_type: str
    ntire2022_macs: int
    complete_macs: int
    reason: str

    @property
    def difference(self) -> int:
        return self.ntire2022_macs - self.complete_macs


@dataclass(frozen=True)
class PeerCount:
    name: str
    macs: int | None
    seconds: float
    error: str | None = None


@dataclass(frozen=True)
class Ntire2022Counts:
    macs: int
    activations: int
    convs: int


@dataclass(frozen=True)
class CompleteCounts:
    macs: int
    macs_by_kind: dict[str, int]
    elements_by_kind: dict[str, int]
    uncounted_ops: dict[str, int]  # op -> calls whose cost no formula knows

    @property
    def flops(self) -> int:
        """Floating-point operations of the MAC kinds: 2 per multiply-accumulate."""
        return 2 * self.macs


@dataclass(frozen=True)
class Counts:
    params: int
    buffers: int
    input_shape: tuple[int, ...]
    backend: str  # "fake" (no arithmetic), "meta", or "real" (fallback forward)
    fallback_reason: str | None
    ops: tuple[OpRecord, ...]
    ntire2022_layers: tuple[NtireRecord, ...]
    divergences: tuple[Divergence, ...] = ()
    peers: dict[str, PeerCount] = field(default_factory=dict)
    seconds: float = 0.0
    # None: a record written before the ntire2024 convention existed
    ntire2024_layers: tuple[Ntire2024Record, ...] | None = None
    ntire2024_divergences: tuple[Ntire2024Divergence, ...] = ()

    @property
    def ntire2022(self) -> Ntire2022Counts:
        return Ntire2022Counts(
            macs=sum(r.macs for r in self.ntire2022_layers),
            activations=sum(r.activations for r in self.ntire2022_layers),
            convs=sum(r.convs for r in self.ntire2022_layers),
        )

    @property
    def ntire2024(self) -> Ntire2022Counts | None:
        """The 2024-2026 convention: MACs as fvcore's ``FlopCountAnalysis(...).total()``,
        #Acts and #Conv the 2022 hooks'. None for a record that predates it."""
        if self.ntire2024_layers is None:
            return None
        hooks = self.ntire2022
        return Ntire2022Counts(macs=sum(r.macs for r in self.ntire2024_layers),
                               activations=hooks.activations, convs=hooks.convs)

    @property
    def complete(self) -> CompleteCounts:
        macs_by_kind: dict[str, int] = {}
        elements_by_kind: dict[str, int] = {}
        uncounted: dict[str, int] = {}
        for r in self.ops:
            if r.kind in MAC_KINDS:
                macs_by_kind[r.kind] = macs_by_kind.get(r.kind, 0) + r.macs
            elif r.kind == "other":
                uncounted[r.op] = uncounted.get(r.op, 0) + r.calls
            else:
                elements_by_kind[r.kind] = elements_by_kind.get(r.kind, 0) + r.output_elements
        return CompleteCounts(
            macs=sum(macs_by_kind.values()),
            macs_by_kind=macs_by_kind,
            elements_by_kind=elements_by_kind,
            uncounted_ops=uncounted,
        )

    def by_module(self) -> dict[str, int]:
        """Complete MACs per module path (the module's own ops, not its children's)."""
        out: dict[str, int] = {}
        for r in self.ops:
            out[r.module] = out.get(r.module, 0) + r.macs
        return out

    def by_operator(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.ops:
            out[r.op] = out.get(r.op, 0) + r.macs
        return out

    def peer_rel_diff(self, name: str) -> float | None:
        """(peer - complete) / complete, or None when the peer failed."""
        peer = self.peers.get(name)
        total = self.complete.macs
        if peer is None or peer.macs is None or total == 0:
            return None
        return (peer.macs - total) / total

    def to_dict(self) -> dict[str, Any]:
        complete = self.complete
        return {
            "params": self.params,
            "buffers": self.buffers,
            "backend": self.backend,
            "fallback_reason": self.fallback_reason,
            "seconds": self.seconds,
            "ntire2022": asdict(self.ntire2022),
            "ntire2024": None if self.ntire2024 is None else asdict(self.ntire2024),
            "complete": {**asdict(complete), "flops": complete.flops},
            "layers": [asdict(r) for r in self.ops],
            "ntire2022_layers": [asdict(r) for r in self.ntire2022_layers],
            "divergences": [asdict(d) for d in self.divergences],
            "ntire2024_layers": (None if self.ntire2024_layers is None
                                 else [asdict(r) for r in self.ntire2024_layers]),
            "ntire2024_divergences": [asdict(d) for d in self.ntire2024_divergences],
            "peers": {
                name: {**asdict(p), "rel_diff": self.peer_rel_diff(name)}
                for name, p in self.peers.items()
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], input_shape: Iterable[int],
                  source: str = "<dict>") -> Counts:
        """The counts a ``to_dict()`` gave; every count is checked (a non-negative integer)."""
        data = mapping(data, "counts", source)
        peers = mapping(data.get("peers"), "counts.peers", source, optional=True)
        return cls(
            params=number(data.get("params"), "counts.params", source, optional=False,
                          integer=True),
            buffers=number(data.get("buffers", 0), "counts.buffers", source, optional=False,
                           integer=True),
            input_shape=tuple(int(d) for d in input_shape),
            backend=text(data.get("backend", "unknown"), "counts.backend", source),
            fallback_reason=text(data.get("fallback_reason"), "counts.fallback_reason", source,
                                 optional=True),
            ops=_records(OpRecord, data.get("layers"), "counts.layers", source),
            ntire2022_layers=_records(NtireRecord, data.get("ntire2022_layers"),
                                      "counts.ntire2022_layers", source),
            divergences=_records(Divergence, data.get("divergences"), "counts.divergences",
                                 source),
            peers={k: _record(PeerCount, v, f"counts.peers.{k}", source)
                   for k, v in peers.items()},
            seconds=number(data.get("seconds", 0.0), "counts.seconds", source, optional=False),
            ntire2024_layers=(None if data.get("ntire2024_layers") is None else _records(
                Ntire2024Record, data.get("ntire2024_layers"), "counts.ntire2024_layers",
                source)),
            ntire2024_divergences=_records(Ntire2024Divergence,
                                           data.get("ntire2024_divergences"),
                                           "counts.ntire2024_divergences", source),
        )


def _records(cls: type, items: Any, where: str, source: str) -> tuple[Any, ...]:
    return tuple(_record(cls, item, f"{where}[{i}]", source)
                 for i, item in enumerate(array(items, where, source, optional=True)))


def _record(cls: type, item: Any, where: str, source: str) -> Any:
    """A record dataclass from its dict: its fields only, each of its annotated kind (ints are
    counts, never negative)."""
    item = mapping(item, where, source)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        kind = str(f.type)
        value = item.get(f.name)
        name = f"{where}.{f.name}"
        if kind.startswith("int"):
            values[f.name] = number(value, name, source, optional="None" in kind, integer=True)
        elif kind.startswith("float"):
            values[f.name] = number(value, name, source, optional="None" in kind)
        else:
            values[f.name] = text(value, name, source, optional="None" in kind)
    return cls(**values)


@dataclass(frozen=True)
class Result:
    """Everything measured about one model: counts, and when a run was asked for, its record.

    ``run`` is a :class:`esrprof.run.RunResult` (whose ``to_dict()`` gives the ``runtime``,
    ``memory``, ``quality``, ``data`` and ``run_config`` top-level blocks), in memory and read
    back from JSON alike.
    """

    model: ModelInfo
    input_shape: tuple[int, ...]
    counts: Counts | None
    run: RunResult | None = None
    environment: dict[str, Any] = field(default_factory=dict)
    prediction: Prediction | None = None  # GPU figures predicted from the shape trace
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat())
    tool_version: str = __version__
    challenge: str = "ntire2022"  # the year whose rules the figures follow (esrprof/challenges)

    def run_blocks(self) -> dict[str, Any]:
        if self.run is None:
            return {}
        return dict(self.run) if isinstance(self.run, Mapping) else self.run.to_dict()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "tool": {"name": "esrprof", "version": self.tool_version},
            "created": self.created,
            "challenge": self.challenge,
            "model": asdict(self.model),
            "input_shape": list(self.input_shape),
            "counts": self.counts.to_dict() if self.counts is not None else None,
        }
        out.update(self.run_blocks())
        if self.prediction is not None:
            out["prediction"] = self.prediction.to_dict()
        out["environment"] = self.environment
        return out

    def to_json(self, indent: int | None = 2) -> str:
        return jsonio.dumps(self.to_dict(), indent=indent)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the JSON record (see :func:`esrprof.files.write_text`); returns ``path``."""
        return files.write_text(path, self.to_json() + "\n")

    def summary(self) -> dict[str, Any]:
        """One flat row in the challenge's units: what leaderboards and tables read."""
        blocks = self.run_blocks()
        runtime = blocks.get("runtime") or {}
        memory = blocks.get("memory") or {}
        psnr = (blocks.get("quality") or {}).get("psnr_db") or {}
        row: dict[str, Any] = {"model": self.model.name}
        if self.counts is not None:
            n = self.counts.ntire2022
            flops = convention_counts(self.counts, challenge(self.challenge).counting.convention)
            row.update(
                params_m=self.counts.params / 1e6,
                flops_g=flops.macs / 1e9 if flops is not None else None,
                acts_m=n.activations / 1e6,
                convs=n.convs,
                complete_macs_g=self.counts.complete.macs / 1e9,
            )
        row["challenge"] = self.challenge
        row.update(
            runtime_ms=runtime.get("runtime_ms"),
            memory_mib=memory.get("memory_mib"),
            psnr_val=psnr.get("valid"),
            psnr_test=psnr.get("test"),
            hardware=self.environment.get("hardware"),
        )
        return row

    def to_dataframe(self) -> Any:
        return require("pandas", "to_dataframe()").DataFrame([self.summary()])

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "<dict>") -> Result:
        check_schema(data, source)
        shape = tuple(
            number(d, f"input_shape[{i}]", source, low="positive", optional=False, integer=True)
            for i, d in enumerate(array(data.get("input_shape"), "input_shape", source))
        )
        counts = data.get("counts")
        environment = mapping(data.get("environment"), "environment", source, optional=True)
        prediction = None
        if data.get("prediction") is not None:
            try:
                prediction = Prediction.from_dict(
                    mapping(data["prediction"], "prediction", source))
            except ResultFileError as exc:
                raise ResultFileError(f"{source}: {exc}") from None
        blocks = {k: v for k, v in data.items() if k not in _RESULT_KEYS}
        run = None
        if blocks:
            from esrprof.run import RunResult

            run = RunResult.from_dict(blocks, environment=environment, source=source)
        return cls(
            model=_model_info(data.get("model"), source),
            input_shape=shape,
            counts=Counts.from_dict(counts, shape, source) if counts else None,
            run=run,
            environment=dict(environment),
            prediction=prediction,
            created=str(data.get("created", "")),
            challenge=_challenge_name(data.get("challenge", "ntire2022"), source),
            tool_version=str(mapping(data.get("tool"), "tool", source, optional=True)
                             .get("version", "")),
        )


# Top-level keys of a result that are not the run's blocks.
_RESULT_KEYS = ("schema_version", "tool", "created", "model", "input_shape", "counts",
                "environment", "prediction", "challenge")


def _challenge_name(value: Any, source: str) -> str:
    try:
        return challenge(text(value, "challenge", source)).name
    except UsageError as exc:
        raise ResultFileError(f"{source}: {exc}") from None


def convention_counts(counts: Counts, convention: str) -> Any | None:
    """The ``macs``/``activations``/``convs`` of one counting convention (``ntire2022`` or
    ``ntire2024``): the FLOPs a challenge year publishes. None where these counts lack it (a
    record read from a file written without it)."""
    return getattr(counts, convention, None)


def _model_info(value: Any, source: str) -> ModelInfo:
    value = mapping(value, "model", source)
    name = text(value.get("name"), "model.name", source)
    if not name.strip():
        raise ResultFileError(f"{source}: model.name is empty")
    return ModelInfo(
        name=name,
        spec=text(value.get("spec"), "model.spec", source, optional=True),
        kwargs=mapping(value.get("kwargs"), "model.kwargs", source, optional=True),
        weights=text(value.get("weights"), "model.weights", source, optional=True),
        class_name=text(value.get("class_name", ""), "model.class_name", source),
    )


def check_schema(data: Any, source: str) -> None:
    if not isinstance(data, Mapping) or "schema_version" not in data:
        raise ResultFileError(f"{source}: not an esrprof result (no schema_version)")
    version = data["schema_version"]
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ResultFileError(f"{source}: invalid schema_version {version!r}")
    if version > SCHEMA_VERSION:
        raise ResultFileError(
            f"{source}: written with schema {version}, newer than this esrprof reads "
            f"({SCHEMA_VERSION}); upgrade esrprof"
        )


def load_result(path: str | os.PathLike[str]) -> Result:
    return Result.from_dict(jsonio.read_json(path), source=str(path))
