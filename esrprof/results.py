"""Result records: plain frozen dataclasses, one versioned JSON schema, atomic writes.

Raw per-layer records are stored; every total and view is derived from them, so a record read
back from JSON gives the same totals as the one that was measured.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from esrprof._version import __version__
from esrprof.counting.formulas import MAC_KINDS
from esrprof.errors import ResultFileError

SCHEMA_VERSION = 1
# What changed between versions; a reader refuses any version above SCHEMA_VERSION.
SCHEMA_HISTORY = {
    1: "first schema: model, input_shape, counts (params, buffers, ntire2022, complete, layers, "
    "peers), runtime, memory, quality, environment",
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

    @property
    def ntire2022(self) -> Ntire2022Counts:
        return Ntire2022Counts(
            macs=sum(r.macs for r in self.ntire2022_layers),
            activations=sum(r.activations for r in self.ntire2022_layers),
            convs=sum(r.convs for r in self.ntire2022_layers),
        )

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
            "complete": {**asdict(complete), "flops": complete.flops},
            "layers": [asdict(r) for r in self.ops],
            "ntire2022_layers": [asdict(r) for r in self.ntire2022_layers],
            "divergences": [asdict(d) for d in self.divergences],
            "peers": {
                name: {**asdict(p), "rel_diff": self.peer_rel_diff(name)}
                for name, p in self.peers.items()
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], input_shape: Iterable[int]) -> Counts:
        def strip(d: Mapping[str, Any], keep: Iterable[str]) -> dict[str, Any]:
            return {k: d[k] for k in keep}

        peer_fields = ("name", "macs", "seconds", "error")
        return cls(
            params=int(data["params"]),
            buffers=int(data.get("buffers", 0)),
            input_shape=tuple(int(d) for d in input_shape),
            backend=str(data.get("backend", "unknown")),
            fallback_reason=data.get("fallback_reason"),
            ops=tuple(OpRecord(**r) for r in data.get("layers", [])),
            ntire2022_layers=tuple(NtireRecord(**r) for r in data.get("ntire2022_layers", [])),
            divergences=tuple(Divergence(**d) for d in data.get("divergences", [])),
            peers={k: PeerCount(**strip(v, peer_fields)) for k, v in data.get("peers", {}).items()},
            seconds=float(data.get("seconds", 0.0)),
        )


@dataclass(frozen=True)
class Result:
    """Everything measured about one model: counts, and when a run was asked for, its blocks.

    ``run`` is any object with ``to_dict()`` returning the ``runtime``, ``memory``, ``quality``
    (and other) top-level blocks; a result read back from JSON keeps them as plain dicts.
    """

    model: ModelInfo
    input_shape: tuple[int, ...]
    counts: Counts | None
    run: Any = None
    environment: dict[str, Any] = field(default_factory=dict)
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat())
    tool_version: str = __version__

    def run_blocks(self) -> dict[str, Any]:
        if self.run is None:
            return {}
        return dict(self.run) if isinstance(self.run, Mapping) else self.run.to_dict()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "tool": {"name": "esrprof", "version": self.tool_version},
            "created": self.created,
            "model": asdict(self.model),
            "input_shape": list(self.input_shape),
            "counts": self.counts.to_dict() if self.counts is not None else None,
        }
        out.update(self.run_blocks())
        out["environment"] = self.environment
        return out

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False, default=_json_default)

    def save(self, path: str | os.PathLike[str]) -> Path:
        return atomic_write_text(path, self.to_json() + "\n")

    def summary(self) -> dict[str, Any]:
        """One flat row in the challenge's units: what leaderboards and tables read."""
        blocks = self.run_blocks()
        runtime = blocks.get("runtime") or {}
        memory = blocks.get("memory") or {}
        psnr = (blocks.get("quality") or {}).get("psnr_db") or {}
        row: dict[str, Any] = {"model": self.model.name}
        if self.counts is not None:
            n = self.counts.ntire2022
            row.update(
                params_m=self.counts.params / 1e6,
                flops_g=n.macs / 1e9,
                acts_m=n.activations / 1e6,
                convs=n.convs,
                complete_macs_g=self.counts.complete.macs / 1e9,
            )
        row.update(
            runtime_ms=runtime.get("runtime_ms"),
            memory_mib=memory.get("memory_mib"),
            psnr_val=psnr.get("valid"),
            psnr_test=psnr.get("test"),
            hardware=self.environment.get("hardware"),
        )
        return row

    def to_dataframe(self) -> Any:
        import pandas as pd

        return pd.DataFrame([self.summary()])

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "<dict>") -> Result:
        check_schema(data, source)
        try:
            shape = tuple(int(d) for d in data["input_shape"])
            counts = data.get("counts")
            known = {"schema_version", "tool", "created", "model", "input_shape", "counts",
                     "environment"}
            run = {k: v for k, v in data.items() if k not in known} or None
            return cls(
                model=ModelInfo(**data["model"]),
                input_shape=shape,
                counts=Counts.from_dict(counts, shape) if counts else None,
                run=run,
                environment=dict(data.get("environment") or {}),
                created=str(data.get("created", "")),
                tool_version=str((data.get("tool") or {}).get("version", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ResultFileError(f"{source}: not an esrprof result ({exc!r})") from None


def check_schema(data: Any, source: str) -> None:
    if not isinstance(data, Mapping) or "schema_version" not in data:
        raise ResultFileError(f"{source}: not an esrprof result (no schema_version)")
    version = data["schema_version"]
    if not isinstance(version, int) or version < 1:
        raise ResultFileError(f"{source}: invalid schema_version {version!r}")
    if version > SCHEMA_VERSION:
        raise ResultFileError(
            f"{source}: written with schema {version}, newer than this esrprof reads "
            f"({SCHEMA_VERSION}); upgrade esrprof"
        )


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON file, turning every failure into a one-line ResultFileError."""
    p = Path(path)
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ResultFileError(f"{p}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultFileError(f"{p}: unreadable ({exc.__class__.__name__}: {exc})") from None
    except json.JSONDecodeError as exc:
        raise ResultFileError(f"{p}: not valid JSON (line {exc.lineno}: {exc.msg})") from None


def load_result(path: str | os.PathLike[str]) -> Result:
    return Result.from_dict(read_json(path), source=str(path))


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write through a temporary file in the same folder and rename it over the target, so a
    reader never sees half a file and a failed write leaves the old one intact."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item"):  # numpy / torch scalars
        return obj.item()
    raise TypeError(f"cannot serialise {type(obj).__name__}")
