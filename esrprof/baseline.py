"""Baseline files for the latency gate: what the base version of a model *was*, and how fast.

A baseline keeps the **source** of the model's file (and its hash), the class, the constructor
kwargs and the input shape, so the gate can rebuild the base version beside the candidate even
after the file has changed, and time both in one process (see :mod:`esrprof.gate`). It also keeps
the base's absolute latency samples and the environment, used only on the same hardware.

Files are written atomically and never overwritten without ``force``. Reading one checks
everything it can and raises :class:`~esrprof.errors.ResultFileError` (exit 2) with one clear
line: corrupt, not a baseline, another model, another input shape, other hardware.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import subprocess
import sys
import types
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from esrprof._version import __version__
from esrprof.errors import ModelError, ResultFileError, UsageError
from esrprof.results import atomic_write_text, check_schema, read_json

KIND = "esrprof-baseline"
BASELINE_SCHEMA = 1
BASELINE_HISTORY = {1: "first baseline format: model, input_shape, base source, latency samples"}


@dataclass(frozen=True)
class BaseSource:
    """A copy of the file that defines the model class, enough to rebuild the base version."""

    module: str  # the module name it was imported as (for its package, i.e. relative imports)
    file: str  # where it lived when saved (informational, and its folder for sibling imports)
    qualname: str
    source: str
    sha256: str
    git_revision: str | None = None

    @classmethod
    def of_class(cls, klass: type) -> BaseSource:
        try:
            path = inspect.getsourcefile(klass)
        except TypeError:
            path = None
        if not path or not Path(path).is_file():
            raise UsageError(
                f"cannot find the source file of {klass.__qualname__}; the gate rebuilds the "
                "base version from it, so define the model in a .py file"
            )
        text = Path(path).read_text(encoding="utf-8")
        return cls(
            module=klass.__module__,
            file=str(Path(path).resolve()),
            qualname=klass.__qualname__,
            source=text,
            sha256=_sha256(text),
            git_revision=_git_revision(Path(path).parent),
        )

    def build(self, kwargs: Mapping[str, Any]) -> Any:
        """Instantiate the stored class from the stored source (RNG and flags left untouched)."""
        from esrprof.state import preserved

        module = self._load_module()
        obj: Any = module
        try:
            for part in self.qualname.split("."):
                obj = getattr(obj, part)
        except AttributeError:
            raise ResultFileError(
                f"baseline source has no class {self.qualname!r} (corrupt baseline?)"
            ) from None
        try:
            with preserved():
                return obj(**dict(kwargs))
        except Exception as exc:
            raise ModelError(
                f"rebuilding the base {self.qualname} from the baseline's source failed: "
                f"{exc.__class__.__name__}: {exc}"
            ) from exc

    def _load_module(self) -> types.ModuleType:
        name = f"_esrprof_base_{self.sha256[:16]}"
        if name in sys.modules:
            return sys.modules[name]
        module = types.ModuleType(name)
        module.__file__ = f"<esrprof baseline copy of {self.file}>"
        # Relative and sibling imports resolve against the *current* package: only this one
        # file is frozen in the baseline (see docs/ci-gating.md).
        module.__package__ = self.module.rpartition(".")[0]
        folder = str(Path(self.file).parent)
        added = folder not in sys.path
        if added:
            sys.path.insert(0, folder)
        sys.modules[name] = module  # dataclasses and typing look the module up while executing
        try:
            exec(compile(self.source, module.__file__, "exec"), module.__dict__)
        except Exception as exc:
            del sys.modules[name]
            raise ModelError(
                f"the baseline's copy of {self.file} does not import any more: "
                f"{exc.__class__.__name__}: {exc}"
            ) from exc
        finally:
            if added:
                sys.path.remove(folder)
        return module


@dataclass(frozen=True)
class Reference:
    """A different network timed beside the base when the baseline was saved (``--reference``):
    the gate can then time the candidate against it instead of the base version. Kept for
    models whose base cannot be rebuilt; it is the noisier method (see docs/ci-gating.md)."""

    spec: str
    kwargs: dict[str, Any]
    ratios: tuple[float, ...]  # per-block ratios base / reference (esrprof.gate.block_ratios)

    @classmethod
    def resolve(cls, name: str) -> tuple[str, dict[str, Any]]:
        """A reference-model name (``imdn``) or a spec -> (spec, kwargs)."""
        if ":" in name:
            return name, {}
        try:
            from esrprof.zoo.registry import get
        except ImportError:
            raise UsageError(f"reference {name!r}: give a spec FILE.py:Class") from None
        try:
            entry = get(name)
        except KeyError as exc:
            raise UsageError(str(exc.args[0])) from None
        return entry.spec, dict(entry.kwargs)

    def build(self) -> Any:
        from esrprof.loading import build

        return build(self.spec, self.kwargs)


@dataclass(frozen=True)
class Baseline:
    name: str
    class_name: str  # qualname of the model class; the identity a candidate must share
    spec: str | None
    kwargs: dict[str, Any]
    input_shape: tuple[int, ...]
    device: str
    base: BaseSource
    samples_ms: tuple[float, ...]
    environment: dict[str, Any] = field(default_factory=dict)
    params: int | None = None
    reference: Reference | None = None
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat())
    tool_version: str = __version__

    @property
    def hardware(self) -> str | None:
        return self.environment.get("hardware")

    @property
    def median_ms(self) -> float:
        from statistics import median

        return float(median(self.samples_ms))

    @property
    def fast_end_ms(self) -> float:
        from esrprof.gate import fast_end_ms

        return fast_end_ms(self.samples_ms)

    def build_base(self) -> Any:
        return self.base.build(self.kwargs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": KIND,
            "schema_version": BASELINE_SCHEMA,
            "tool": {"name": "esrprof", "version": self.tool_version},
            "created": self.created,
            "model": {
                "name": self.name,
                "class_name": self.class_name,
                "spec": self.spec,
                "kwargs": self.kwargs,
                "params": self.params,
            },
            "input_shape": list(self.input_shape),
            "device": self.device,
            "latency": {
                "samples_ms": list(self.samples_ms),
                "median_ms": self.median_ms,
                "fast_end_ms": self.fast_end_ms,
            },
            "base": asdict(self.base),
            "reference": asdict(self.reference) if self.reference is not None else None,
            "environment": self.environment,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, allow_nan=False)

    @classmethod
    def from_dict(cls, data: Any, source: str = "<dict>") -> Baseline:
        if not isinstance(data, Mapping) or data.get("kind") != KIND:
            what = "an esrprof result" if isinstance(data, Mapping) and "counts" in data else None
            raise ResultFileError(
                f"{source}: not an esrprof baseline"
                + (f" (it is {what}; make one with `esrprof baseline save`)" if what else "")
            )
        check_schema(data, source)
        if data["schema_version"] > BASELINE_SCHEMA:
            raise ResultFileError(
                f"{source}: baseline format {data['schema_version']} is newer than this "
                f"esrprof reads ({BASELINE_SCHEMA}); upgrade esrprof"
            )
        try:
            model = data["model"]
            base = BaseSource(**data["base"])
            samples = tuple(float(s) for s in data["latency"]["samples_ms"])
            ref = data.get("reference")
            reference = (
                Reference(
                    spec=str(ref["spec"]),
                    kwargs=dict(ref.get("kwargs") or {}),
                    ratios=tuple(float(r) for r in ref["ratios"]),
                )
                if ref
                else None
            )
            out = cls(
                name=str(model["name"]),
                class_name=str(model["class_name"]),
                spec=model.get("spec"),
                kwargs=dict(model.get("kwargs") or {}),
                input_shape=tuple(int(d) for d in data["input_shape"]),
                device=str(data.get("device", "cpu")),
                base=base,
                samples_ms=samples,
                environment=dict(data.get("environment") or {}),
                params=model.get("params"),
                reference=reference,
                created=str(data.get("created", "")),
                tool_version=str((data.get("tool") or {}).get("version", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ResultFileError(
                f"{source}: corrupt baseline (missing or malformed {exc!s}); save it again "
                "with `esrprof baseline save --force`"
            ) from None
        if _sha256(base.source) != base.sha256:
            raise ResultFileError(
                f"{source}: corrupt baseline: the stored source of {base.qualname} does not "
                "match its sha256"
            )
        if not samples or any(not (s > 0) for s in samples):
            raise ResultFileError(f"{source}: corrupt baseline: no valid latency samples")
        if not out.input_shape or any(d <= 0 for d in out.input_shape):
            raise ResultFileError(f"{source}: corrupt baseline: bad input_shape")
        return out


def save_baseline(baseline: Baseline, path: str | os.PathLike[str], *, force: bool = False) -> Path:
    """Write ``baseline`` atomically; refuse to replace an existing file unless ``force``."""
    target = Path(path)
    if target.exists() and not force:
        raise UsageError(f"{target} exists; pass --force to overwrite the baseline")
    return atomic_write_text(target, baseline.to_json() + "\n")


def load_baseline(path: str | os.PathLike[str]) -> Baseline:
    return Baseline.from_dict(read_json(path), source=str(path))


def check_compatible(
    baseline: Baseline,
    *,
    class_name: str | None,
    input_shape: Sequence[int] | None,
    hardware: str | None,
    allow_other_hardware: bool = False,
    source: str = "baseline",
) -> list[str]:
    """Raise on a baseline that is not for this model, shape or machine; return notes."""
    notes: list[str] = []
    if class_name is not None and class_name != baseline.class_name:
        raise ResultFileError(
            f"{source} is for model {baseline.class_name} ({baseline.name}), not {class_name}"
        )
    if input_shape is not None and tuple(input_shape) != baseline.input_shape:
        raise ResultFileError(
            f"{source} was taken at input shape {_shape(baseline.input_shape)}, "
            f"not {_shape(input_shape)}"
        )
    if hardware != baseline.hardware:
        if not allow_other_hardware:
            raise ResultFileError(
                f"{source} was taken on {baseline.hardware!r}, this machine is {hardware!r}; "
                "pass --allow-other-hardware to gate on the relative check only"
            )
        notes.append(
            f"baseline hardware {baseline.hardware!r} differs from {hardware!r}: absolute "
            "check skipped, relative check only"
        )
    return notes


def _shape(shape: Sequence[int]) -> str:
    return "x".join(str(d) for d in shape)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _git_revision(folder: Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def make_baseline(
    model: Any,
    input_shape: Sequence[int],
    *,
    factory: Any = None,
    kwargs: Mapping[str, Any] | None = None,
    spec: str | None = None,
    name: str | None = None,
    samples: int = 100,
    threads: int = 1,
    clock: Any = None,
    environment: Mapping[str, Any] | None = None,
    reference: str | None = None,
) -> Baseline:
    """Capture ``model`` as the base version: its source, kwargs, latency and environment.

    ``factory`` is what built it (default: its class) and ``kwargs`` what it was called with.
    The base is rebuilt from the captured source at once and compared layer by layer with
    ``model``, so a baseline that could not reproduce the architecture is never written.
    """
    from esrprof.gate import model_device, sample_latency

    kwargs = dict(kwargs or {})
    shape = tuple(int(d) for d in input_shape)
    if not shape or any(d <= 0 for d in shape):
        from esrprof.errors import InputShapeError

        raise InputShapeError(f"input shape {shape} must be positive integers")
    base = BaseSource.of_class(factory if factory is not None else type(model))
    if factory is not None and not inspect.isclass(factory):
        base = BaseSource(**{**asdict(base), "qualname": factory.__qualname__})
    rebuilt = base.build(kwargs)
    _check_same_architecture(model, rebuilt, base.qualname, kwargs)
    device = model_device(model)
    times = sample_latency(
        model, shape, beside=rebuilt, samples=samples, threads=threads, clock=clock
    )
    ref = None
    if reference is not None:
        from esrprof.gate import block_ratios

        spec_ref, kwargs_ref = Reference.resolve(reference)
        partial = Reference(spec_ref, kwargs_ref, ())
        mine, theirs = sample_latency(
            model, shape, beside=partial.build(), samples=samples, threads=threads,
            clock=clock, both=True,
        )
        ref = Reference(spec_ref, kwargs_ref, tuple(float(r) for r in block_ratios(mine, theirs)))
    if environment is None:
        from esrprof.gate import environment_for

        environment = environment_for(device, threads)
    return Baseline(
        name=name or type(model).__name__,
        class_name=type(model).__qualname__,
        spec=spec,
        kwargs=kwargs,
        input_shape=shape,
        device=device,
        base=base,
        samples_ms=tuple(times),
        environment=dict(environment),
        params=sum(p.numel() for p in model.parameters()),
        reference=ref,
    )


def _check_same_architecture(model: Any, rebuilt: Any, qualname: str, kwargs: dict) -> None:
    want = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in rebuilt.state_dict().items()}
    if want == got and type(rebuilt).__qualname__ == type(model).__qualname__:
        return
    differ = sorted(set(want) ^ set(got)) or [k for k in want if want[k] != got.get(k)]
    raise UsageError(
        f"{qualname}(**{kwargs!r}) rebuilt from its source is not the model given "
        f"({len(differ)} tensors differ, e.g. {', '.join(differ[:3]) or 'class'}); "
        "pass the constructor kwargs the model was built with"
    )
