"""Baseline files for the latency gate: what the base version of a model *was*, and how fast.

A baseline keeps the **source** of the model's file (and its hash), the class, the constructor
kwargs and the input shape, so the gate can rebuild the base version beside the candidate even
after the file has changed, and time both in one process (see :mod:`esrprof.latency.gate`). It
also keeps the base's latency samples and the environment they were taken in.

**A baseline is code.** The gate executes the stored source; the sha256 beside it is in the
same file, so it catches accidents, not tampering. Review a baseline like code
(``esrprof baseline show --source``), pin it with a hash kept elsewhere (``esrprof gate
--expect-sha256``), and the gate says when the stored source differs from the file it came
from (:func:`source_notice`). A reference ``spec`` in it is checked before anything is
imported (:meth:`Reference.check_source`: its file inside the baseline's folder or the working
folder, with the sha256 recorded when the baseline was saved) and builds only ``nn.Module``
classes (checked before anything is called).

Files are written with :func:`esrprof.files.write_text` and never replaced without ``force``;
reading one checks every field and raises :class:`~esrprof.errors.ResultFileError` (exit 2) with
one line naming the file and the field.
"""

from __future__ import annotations

import difflib
import hashlib
import inspect
import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from torch import nn

from esrprof._version import __version__
from esrprof.environment import same_hardware
from esrprof.errors import (
    USER_CODE_ERRORS,
    EsrprofError,
    OutputError,
    ResultFileError,
    UsageError,
    user_code_failed,
)
from esrprof.files import write_json
from esrprof.jsonio import dumps, number, read_json
from esrprof.latency.sampling import environment_for, fixed_pairs, require_module
from esrprof.latency.statistics import MIN_PAIRS, block_ratios, fast_end_ms, is_finite_positive
from esrprof.loading import build, exec_source
from esrprof.probe import check_shape, device_dtype, shape_text
from esrprof.state import preserved

KIND = "esrprof-baseline"
BASELINE_SCHEMA = 3
BASELINE_HISTORY = {
    1: "first baseline format: model, input_shape, base source, latency samples",
    2: "base.git_dirty; base.git_revision only for a file git tracks",
    3: "reference.sha256: the reference spec's file, checked before it is imported",
}
REVIEW_NOTE = (
    "a baseline is code: the gate executes its stored source (the sha256 beside it proves "
    "nothing against tampering); review changes to it like code"
)


@dataclass(frozen=True)
class BaseSource:
    """A copy of the file that defines the model class, enough to rebuild the base version."""

    module: str  # the module name it was imported as (for its package, i.e. relative imports)
    file: str  # where it lived when saved (informational, and its folder for sibling imports)
    qualname: str
    source: str
    sha256: str
    git_revision: str | None = None  # HEAD when saved, only if git tracks the file
    git_dirty: bool | None = None  # whether the file differed from that HEAD

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
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read the source of {klass.__qualname__}: {exc}") from None
        revision, dirty = git_state(Path(path))
        return cls(
            module=klass.__module__,
            file=str(Path(path).resolve()),
            qualname=klass.__qualname__,
            source=text,
            sha256=sha256(text),
            git_revision=revision,
            git_dirty=dirty,
        )

    def model_class(self) -> type[nn.Module]:
        """The stored class, from the stored source (this executes it)."""
        # Relative and sibling imports resolve against the *current* package and folder: only
        # this one file is frozen in the baseline (see docs/ci-gating.md).
        module = exec_source(
            f"_esrprof_base_{self.sha256[:16]}",
            self.source,
            f"<esrprof baseline copy of {self.file}>",
            folder=Path(self.file).parent,
            package=self.module.rpartition(".")[0],
            what=f"importing the baseline's copy of {self.file}",
        )
        obj: Any = module
        for part in self.qualname.split("."):
            if not hasattr(obj, part):
                raise ResultFileError(
                    f"baseline source has no class {self.qualname!r} (corrupt baseline?)"
                )
            obj = getattr(obj, part)
        if not (inspect.isclass(obj) and issubclass(obj, nn.Module)):
            raise ResultFileError(
                f"{self.qualname} in the baseline's source is not a torch.nn.Module class"
            )
        return obj

    def build(self, kwargs: Mapping[str, Any]) -> nn.Module:
        """Instantiate the stored class from the stored source (RNG and flags left untouched)."""
        klass = self.model_class()
        try:
            with preserved():
                return klass(**dict(kwargs))
        except USER_CODE_ERRORS as exc:
            raise user_code_failed(
                f"rebuilding the base {self.qualname} from the baseline's source", exc
            ) from exc

    def compare_with_file(self) -> tuple[str, str]:
        """(state, unified diff) of the stored source against the file it came from now;
        state is ``same``, ``differs``, ``missing`` or ``unreadable``."""
        path = Path(self.file)
        if not path.is_file():
            return "missing", ""
        try:
            current = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return "unreadable", ""
        if current == self.source:
            return "same", ""
        diff = difflib.unified_diff(
            self.source.splitlines(keepends=True),
            current.splitlines(keepends=True),
            fromfile=f"baseline copy (sha256 {self.sha256[:12]})",
            tofile=self.file,
        )
        return "differs", "".join(line if line.endswith("\n") else line + "\n" for line in diff)


@dataclass(frozen=True)
class Reference:
    """A different network timed beside the base when the baseline was saved (``--reference``):
    the gate can then time the candidate against it instead of the base version. Kept for
    models whose base cannot be rebuilt; it is the noisier method (see docs/ci-gating.md)."""

    spec: str
    kwargs: dict[str, Any]
    ratios: tuple[float, ...]  # per-block ratios base / reference (statistics.block_ratios)
    sha256: str | None = None  # of the spec's file when the baseline was saved

    @classmethod
    def resolve(cls, name: str) -> tuple[str, dict[str, Any]]:
        """A reference-model name (``imdn``) or a spec -> (spec, kwargs)."""
        if ":" in name:
            return name, {}
        from esrprof.zoo.registry import get

        try:
            entry = get(name)
        except KeyError as exc:
            raise UsageError(str(exc.args[0])) from None
        return entry.spec, dict(entry.kwargs)

    def check_source(self, roots: Sequence[Path], *, source: str = "baseline") -> None:
        """Refuse, before anything is imported, a spec whose file cannot be vouched for: one
        esrprof cannot find without importing, one outside ``roots`` (the baseline's folder,
        the working folder), or one whose sha256 is not the one recorded at save time.
        esrprof's own reference models are trusted as esrprof itself is."""
        path = spec_file(self.spec)
        hint = "; pass --trust-spec to import it anyway"
        if path is None:
            raise ResultFileError(
                f"{source}: cannot find the file of the reference spec {self.spec} without "
                f"importing it{hint}")
        if _inside(path, [_PACKAGE_DIR]):
            return
        if not _inside(path, roots):
            where = " or ".join(str(r) for r in roots)
            raise ResultFileError(
                f"{source}: the reference spec {self.spec} names {path}, outside {where}{hint}")
        if self.sha256 is None:
            raise ResultFileError(
                f"{source}: no sha256 of the reference spec's file {path} was recorded (a "
                f"baseline older than format 3): save it again{hint}")
        try:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError as exc:
            raise ResultFileError(f"{source}: cannot read {path}: {exc.strerror}") from None
        if digest != self.sha256:
            raise ResultFileError(
                f"{source}: the reference spec's file {path} changed since the baseline was "
                f"saved (sha256 {digest[:12]}, recorded {self.sha256[:12]}){hint}")

    def build(self, roots: Sequence[Path] = (), *, trust: bool = False,
              source: str = "baseline") -> nn.Module:
        """The reference network; unless ``trust``, its file is checked first
        (:meth:`check_source`)."""
        if not trust:
            self.check_source(roots or [Path.cwd()], source=source)
        # loading.build resolves the spec to an nn.Module class before calling anything: a
        # baseline naming "os:system" is refused, not run.
        return build(self.spec, self.kwargs)


_PACKAGE_DIR = Path(__file__).resolve().parents[1]


def _inside(path: Path, roots: Sequence[Path]) -> bool:
    return any(path.is_relative_to(Path(r).resolve()) for r in roots)


def spec_file(spec: str) -> Path | None:
    """The file a ``file.py:Class`` or ``package.module:Class`` spec would import, found
    without importing (or running) anything; None when it cannot be told."""
    target = spec.rpartition(":")[0]
    if target.endswith(".py") or "/" in target or "\\" in target:
        path = Path(target)
        return path.resolve() if path.is_file() else None
    return _module_file(target)


def _module_file(dotted: str) -> Path | None:
    """Where ``import dotted`` would load from, asking the import system's finders (which
    execute nothing) package by package; a module already imported answers for itself."""
    import sys

    parts = dotted.split(".")
    if not all(p.isidentifier() for p in parts):
        return None
    search: list[str] | None = None
    for i in range(len(parts)):
        name = ".".join(parts[: i + 1])
        loaded = sys.modules.get(name)
        spec = getattr(loaded, "__spec__", None) if loaded is not None else None
        if spec is None:
            for finder in sys.meta_path:
                find = getattr(finder, "find_spec", None)
                try:
                    spec = find(name, search) if find is not None else None
                except Exception:  # a finder that cannot answer: ask the next
                    spec = None
                if spec is not None:
                    break
        if spec is None:
            return None
        if i == len(parts) - 1:
            origin = spec.origin
            return Path(origin).resolve() if spec.has_location and origin else None
        locations = spec.submodule_search_locations
        if not locations:
            return None
        search = list(locations)
    return None


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
    origin: str | None = field(default=None, compare=False)  # the file it was read from

    def roots(self) -> list[Path]:
        """Where a reference spec's file may live: the baseline's folder, the working folder."""
        folders = [Path(self.origin).resolve().parent] if self.origin else []
        return [*folders, Path.cwd()]

    @property
    def hardware(self) -> str | None:
        return self.environment.get("hardware")

    @property
    def median_ms(self) -> float:
        from statistics import median

        return float(median(self.samples_ms))

    @property
    def fast_end_ms(self) -> float:
        return fast_end_ms(self.samples_ms)

    def build_base(self) -> nn.Module:
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
        return dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: Any, source: str = "<dict>") -> Baseline:
        """A baseline from its JSON form; every missing, wrong-typed or impossible field is one
        ResultFileError line naming ``source`` and the field."""
        _check_kind(data, source)
        read = _Reader(source)
        model = read.obj(data, "model")
        environment = read.obj(data, "environment", optional=True) or {}
        tool = read.obj(data, "tool", optional=True) or {}
        base = _base_source(read, read.obj(data, "base"))
        return cls(
            name=read.get(model, "model.name", str),
            class_name=read.get(model, "model.class_name", str),
            spec=read.get(model, "model.spec", str, optional=True),
            kwargs=dict(read.obj(model, "model.kwargs", optional=True) or {}),
            input_shape=_input_shape(read, data),
            device=read.get(data, "device", str, optional=True) or "cpu",
            base=base,
            samples_ms=read.positives(read.obj(data, "latency"), "latency.samples_ms",
                                      what="no valid latency samples"),
            environment=dict(environment),
            params=read.get(model, "model.params", int, optional=True),
            reference=_reference(read, data),
            created=read.get(data, "created", str, optional=True) or "",
            tool_version=read.get(tool, "tool.version", str, optional=True) or "",
        )


# ------------------------------------------------------------------------------ reading


class _Reader:
    """Typed access to the fields of one baseline file (dotted names in every message)."""

    def __init__(self, source: str) -> None:
        self.source = source

    def corrupt(self, detail: str) -> ResultFileError:
        return ResultFileError(
            f"{self.source}: corrupt baseline: {detail}; save it again with "
            "`esrprof baseline save --force`"
        )

    def get(self, obj: Mapping[str, Any], path: str, kind: type, *,
            optional: bool = False) -> Any:
        key = path.rpartition(".")[2]
        value = obj.get(key)
        if value is None:
            if optional:
                return None
            raise self.corrupt(f"missing {path}")
        if kind is int:  # a count: the one number check every record shares
            return self.number(value, path, integer=True)
        # bool is an int to Python, never to a baseline
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            raise self.corrupt(
                f"{path} must be {_KIND_NAMES.get(kind, kind.__name__)}, "
                f"not {type(value).__name__}"
            )
        return value

    def obj(self, parent: Mapping[str, Any], path: str, *, optional: bool = False) -> Any:
        return self.get(parent, path, dict, optional=optional)

    def number(self, value: Any, path: str, **how: Any) -> Any:
        """:func:`esrprof.jsonio.number`, its refusal worded as a corrupt baseline."""
        try:
            return number(value, path, self.source, optional=False, **how)
        except ResultFileError as exc:
            raise self.corrupt(str(exc).removeprefix(f"{self.source}: ")) from None

    def positives(self, obj: Mapping[str, Any], path: str, *, what: str) -> tuple[float, ...]:
        values = self.get(obj, path, list)
        bad = next((i for i, v in enumerate(values) if not is_finite_positive(v)), None)
        if not values or bad is not None:
            detail = "it is empty" if not values else f"{path}[{bad}] = {values[bad]!r}"
            raise self.corrupt(f"{what} ({detail}: need finite positive numbers)")
        return tuple(float(self.number(v, f"{path}[{i}]", low="positive"))
                     for i, v in enumerate(values))


_KIND_NAMES = {str: "a string", dict: "an object", list: "a list", int: "an integer",
               bool: "true or false"}


def _check_kind(data: Any, source: str) -> None:
    if not isinstance(data, Mapping) or data.get("kind") != KIND:
        what = "an esrprof result" if isinstance(data, Mapping) and "counts" in data else None
        raise ResultFileError(
            f"{source}: not an esrprof baseline"
            + (f" (it is {what}; make one with `esrprof baseline save`)" if what else "")
        )
    version = data.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ResultFileError(f"{source}: invalid schema_version {version!r}")
    if version > BASELINE_SCHEMA:
        raise ResultFileError(
            f"{source}: baseline format {version} is newer than this esrprof reads "
            f"({BASELINE_SCHEMA}); upgrade esrprof"
        )


def _base_source(read: _Reader, data: Mapping[str, Any]) -> BaseSource:
    base = BaseSource(
        module=read.get(data, "base.module", str),
        file=read.get(data, "base.file", str),
        qualname=read.get(data, "base.qualname", str),
        source=read.get(data, "base.source", str),
        sha256=read.get(data, "base.sha256", str),
        git_revision=read.get(data, "base.git_revision", str, optional=True),
        git_dirty=read.get(data, "base.git_dirty", bool, optional=True),
    )
    if sha256(base.source) != base.sha256:
        raise ResultFileError(
            f"{read.source}: corrupt baseline: the stored source of {base.qualname} does not "
            "match its sha256"
        )
    return base


def _input_shape(read: _Reader, data: Mapping[str, Any]) -> tuple[int, ...]:
    dims = read.get(data, "input_shape", list)
    if not dims or not all(isinstance(d, int) and not isinstance(d, bool) for d in dims):
        raise read.corrupt(f"input_shape must be a list of integers, not {dims!r}")
    if any(d <= 0 for d in dims):
        raise read.corrupt(f"bad input_shape {dims!r}: dimensions must be positive")
    return tuple(dims)


def _reference(read: _Reader, data: Mapping[str, Any]) -> Reference | None:
    ref = read.obj(data, "reference", optional=True)
    if ref is None:
        return None
    return Reference(
        spec=read.get(ref, "reference.spec", str),
        kwargs=dict(read.obj(ref, "reference.kwargs", optional=True) or {}),
        ratios=read.positives(ref, "reference.ratios", what="no valid reference ratios"),
        sha256=read.get(ref, "reference.sha256", str, optional=True),
    )


# ------------------------------------------------------------------------ files and checks


def refuse_existing(path: str | os.PathLike[str], *, force: bool) -> Path:
    """The target of a baseline write, checked before minutes of timing: a folder is never a
    target, and an existing file is replaced only with ``force``."""
    target = Path(path)
    if target.is_dir():
        raise OutputError(f"cannot write {target}: it is a folder")
    parent = next((p for p in target.parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise OutputError(f"cannot write {target}: a parent of it is a file")
    if os.path.lexists(target) and not force:
        raise UsageError(f"{target} exists; pass --force to overwrite the baseline")
    return target


def save_baseline(baseline: Baseline, path: str | os.PathLike[str], *, force: bool = False) -> Path:
    """Write ``baseline`` (atomically, honouring the umask); refuse to replace an existing file
    unless ``force``."""
    return write_json(refuse_existing(path, force=force), baseline.to_dict(), kind="baseline",
                      force=True)  # refuse_existing decided


def load_baseline(path: str | os.PathLike[str]) -> Baseline:
    from dataclasses import replace

    return replace(Baseline.from_dict(read_json(path), source=str(path)), origin=str(path))


def check_expected_sha256(baseline: Baseline, expected: str, source: str = "baseline") -> None:
    """Refuse a baseline whose stored source is not the one the user pinned (a hash kept
    outside the file: the sha256 inside it proves nothing against tampering)."""
    want = str(expected).strip().lower()
    if len(want) != 64 or any(c not in "0123456789abcdef" for c in want):
        raise UsageError(f"--expect-sha256 {expected!r} must be 64 hexadecimal digits "
                         f"(`esrprof baseline show {source}` prints it)")
    if baseline.base.sha256 != want:
        raise ResultFileError(
            f"{source}: its stored source has sha256 {baseline.base.sha256[:16]}..., not the "
            f"expected {want[:16]}...: the baseline changed; review it (`esrprof baseline show "
            f"{source} --source`)")


def source_notice(baseline: Baseline, source: str = "baseline") -> str | None:
    """One line when the source the gate will execute is not the file it came from (or that
    file is not here to compare with); None when they are the same."""
    base = baseline.base
    state, _ = base.compare_with_file()
    if state == "same":
        return None
    how = {"differs": f"differs from {base.file} now",
           "missing": f"cannot be compared: {base.file} is not here",
           "unreadable": f"cannot be compared: {base.file} cannot be read"}[state]
    return (f"the baseline is code: the gate executes its stored source of {base.qualname} "
            f"(sha256 {base.sha256[:12]}), which {how}; `esrprof baseline show {source} "
            "--source` shows it")


def check_compatible(
    baseline: Baseline,
    *,
    class_name: str | None,
    input_shape: Sequence[int] | None,
    environment: Mapping[str, Any],
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
            f"{source} was taken at input shape {shape_text(baseline.input_shape)}, "
            f"not {shape_text(input_shape)}"
        )
    if not same_hardware(dict(environment), baseline.environment):
        here = environment.get("hardware")
        if not allow_other_hardware:
            raise ResultFileError(
                f"{source} was taken on {baseline.hardware!r}, this machine is {here!r}; "
                "pass --allow-other-hardware to gate on the relative check only"
            )
        notes.append(
            f"baseline hardware {baseline.hardware!r} differs from {here!r}: absolute "
            "check skipped, relative check only"
        )
    return notes




def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _git(args: list[str], folder: Path) -> subprocess.CompletedProcess | None:
    try:
        return subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True,
                              timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None


def git_state(path: Path) -> tuple[str | None, bool | None]:
    """(HEAD, whether the file differs from it) when git tracks ``path``; (None, None) for a
    file git does not track (a repository's HEAD says nothing about an untracked file)."""
    folder = path.parent
    tracked = _git(["ls-files", "--error-unmatch", "--", path.name], folder)
    if tracked is None or tracked.returncode != 0:
        return None, None
    head = _git(["rev-parse", "HEAD"], folder)
    if head is None or head.returncode != 0 or not head.stdout.strip():
        return None, None
    diff = _git(["diff", "--quiet", "HEAD", "--", path.name], folder)
    dirty = None if diff is None or diff.returncode not in (0, 1) else diff.returncode == 1
    return head.stdout.strip(), dirty


# ------------------------------------------------------------------------------- making


def make_baseline(
    model: nn.Module,
    input_shape: Sequence[int],
    *,
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

    ``kwargs`` is what its class was called with. The base is rebuilt from the captured source
    at once and compared tensor by tensor with ``model``, so a baseline that could not
    reproduce the architecture is never written. The stored samples are ``model``'s, timed
    interleaved with that rebuilt copy, as the gate will time them.
    """
    require_module(model)
    shape = check_shape(input_shape)
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < MIN_PAIRS:
        raise UsageError(f"samples must be an integer of at least {MIN_PAIRS}")
    kwargs = dict(kwargs or {})
    base = BaseSource.of_class(type(model))
    rebuilt = base.build(kwargs)
    _check_same_architecture(model, rebuilt, base.qualname, kwargs)
    times, _ = fixed_pairs(model, rebuilt, shape, pairs=samples, threads=threads, clock=clock,
                           names=("model", "base rebuilt from its source"))
    ref = _time_reference(model, shape, reference, samples, threads, clock) if reference else None
    return Baseline(
        name=name or type(model).__name__,
        class_name=type(model).__qualname__,
        spec=spec,
        kwargs=kwargs,
        input_shape=shape,
        device=str(device_dtype(model)[0]),
        base=base,
        samples_ms=tuple(times),
        environment=dict(environment if environment is not None
                         else environment_for(model, threads)),
        params=sum(p.numel() for p in model.parameters()),
        reference=ref,
    )


def _time_reference(
    model: nn.Module, shape: tuple[int, ...], name: str, samples: int, threads: int, clock: Any
) -> Reference:
    spec, kwargs = Reference.resolve(name)
    other = Reference(spec, kwargs, ()).build(trust=True)  # the user's own command line
    mine, theirs = fixed_pairs(model, other, shape, pairs=samples, threads=threads, clock=clock,
                               names=("model", f"reference {spec}"))
    ratios = block_ratios(mine, theirs)
    path = spec_file(spec)
    digest = hashlib.sha256(path.read_bytes()).hexdigest() if path is not None else None
    return Reference(spec, kwargs, tuple(float(r) for r in ratios), digest)


def _check_same_architecture(
    model: nn.Module, rebuilt: nn.Module, qualname: str, kwargs: dict[str, Any]
) -> None:
    try:
        want = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        got = {k: tuple(v.shape) for k, v in rebuilt.state_dict().items()}
    except EsrprofError:
        raise
    except USER_CODE_ERRORS as exc:
        raise user_code_failed(f"reading the state_dict of {qualname}", exc) from exc
    if want == got and type(rebuilt).__qualname__ == type(model).__qualname__:
        return
    differ = sorted(set(want) ^ set(got)) or [k for k in want if want[k] != got.get(k)]
    raise UsageError(
        f"{qualname}(**{kwargs!r}) rebuilt from its source is not the model given "
        f"({len(differ)} tensors differ, e.g. {', '.join(differ[:3]) or 'class'}); "
        "pass the constructor kwargs the model was built with"
    )
