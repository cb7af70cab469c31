"""What a run records: per split the raw samples, memory and per-image quality; every figure a
result's JSON shows is derived from them, and :meth:`RunResult.from_dict` reads the JSON back
into the same types (checking each stored figure against the record it summarises)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from esrprof.errors import ResultFileError, UsageError
from esrprof.jsonio import array, jsonable, mapping, number, text
from esrprof.quality import PSNR_CAP_DB, mean_psnr
from esrprof.run.config import RunConfig
from esrprof.timing import Trials


@dataclass(frozen=True)
class ImageQuality:
    image: str
    psnr_db: float  # inf for an output identical to its HR reference
    ssim: float | None


@dataclass(frozen=True)
class SplitResult:
    """Raw record of one split: samples per trial, aligned with ``images``."""

    name: str
    images: tuple[str, ...]  # measured in every kept trial, in order
    shapes: tuple[tuple[int, int], ...]  # LR (h, w) of those images
    trials: Trials
    warmup_forwards: int
    memory: dict[str, Any]
    unreadable: tuple[str, ...] = ()
    oom: tuple[dict[str, Any], ...] = ()
    gpu_states: tuple[dict[str, Any] | None, ...] = ()  # per trial, at its end (NVML)
    quality: tuple[ImageQuality, ...] = ()
    quality_note: str | None = None

    @property
    def throttled_trials(self) -> list[int]:
        return [i for i, s in enumerate(self.gpu_states) if s and s.get("throttled")]

    def runtime_dict(self) -> dict[str, Any]:
        d = self.trials.to_dict()
        d.update(
            images=list(self.images),
            shapes=[list(s) for s in self.shapes],
            n_images=len(self.images),
            warmup_forwards=self.warmup_forwards,
            oom=list(self.oom),
        )
        if self.gpu_states:
            d["gpu_state_per_trial"] = list(self.gpu_states)
            d["throttled_trials"] = self.throttled_trials
        return d

    @classmethod
    def from_blocks(cls, name: str, blocks: Mapping[str, Any], source: str,
                    trial_choice: str = "best") -> SplitResult:
        """The split ``name`` of a run's JSON blocks (``runtime``, ``memory``, ``quality``,
        ``data``), every raw value checked."""
        where = f"runtime.splits.{name}"
        rec = mapping(blocks["runtime"]["splits"][name], where, source)
        trials = [
            [number(x, f"{where}.samples_ms[{t}][{i}]", source, optional=False)
             for i, x in enumerate(array(trial, f"{where}.samples_ms[{t}]", source))]
            for t, trial in enumerate(array(rec.get("samples_ms"), f"{where}.samples_ms", source))
        ]
        images = tuple(text(x, f"{where}.images[{i}]", source)
                       for i, x in enumerate(array(rec.get("images"), f"{where}.images", source)))
        shapes = tuple(_shape(s, f"{where}.shapes[{i}]", source)
                       for i, s in enumerate(array(rec.get("shapes"), f"{where}.shapes", source)))
        if len(shapes) != len(images) or any(len(t) != len(images) for t in trials):
            raise ResultFileError(f"{source}: {where}: samples, images and shapes do not line up")
        states = array(rec.get("gpu_state_per_trial"), f"{where}.gpu_state_per_trial", source,
                       optional=True)
        memory = mapping(blocks["memory"].get("splits"), "memory.splits", source, optional=True)
        unreadable = mapping(blocks["data"].get("unreadable_files"), "data.unreadable_files",
                             source, optional=True)
        return cls(
            name=name,
            images=images,
            shapes=shapes,
            trials=Trials.of(trials, trial_choice),
            warmup_forwards=number(rec.get("warmup_forwards"), f"{where}.warmup_forwards",
                                   source, optional=False, integer=True),
            memory=mapping(memory.get(name), f"memory.splits.{name}", source, optional=True),
            unreadable=tuple(text(x, f"data.unreadable_files.{name}", source)
                             for x in array(unreadable.get(name), "data.unreadable_files",
                                            source, optional=True)),
            oom=tuple(mapping(o, f"{where}.oom", source)
                      for o in array(rec.get("oom"), f"{where}.oom", source, optional=True)),
            gpu_states=tuple(None if s is None else mapping(s, f"{where}.gpu_state_per_trial",
                                                            source) for s in states),
            quality=_image_qualities(blocks["quality"], name, source),
            quality_note=_split_note(blocks["quality"], name, source),
        )


@dataclass(frozen=True)
class RunResult:
    config: RunConfig
    device: str
    clock: str
    threads: int
    scale: int | None
    pixel_range: int
    splits: tuple[SplitResult, ...]
    data: dict[str, Any]
    environment: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    stopped: str | None = None  # why the run stopped early (on_oom="stop")

    def split(self, name: str) -> SplitResult:
        for s in self.splits:
            if s.name == name:
                return s
        raise KeyError(name)

    @property
    def runtime_ms(self) -> float | None:
        """Mean of the split figures (each the best trial's per-image mean, or under the
        2024-2026 protocol the average of the trials')."""
        figures = [s.trials.runtime_ms for s in self.splits]
        figures = [f for f in figures if f is not None]
        return sum(figures) / len(figures) if figures else None

    def _memory_split(self) -> SplitResult | None:
        for s in self.splits:
            if s.name == "valid":
                return s
        return self.splits[0] if self.splits else None

    def to_dict(self) -> dict[str, Any]:
        """The result's run blocks. The environment is not among them: a Result carries it at
        its top level (and hands it back to :meth:`from_dict`)."""
        return jsonable(
            {
                "runtime": self._runtime_block(),
                "memory": self._memory_block(),
                "quality": self._quality_block(),
                "data": self.data,
                "run_config": {
                    **self.config.to_dict(),
                    "device_resolved": self.device,
                    "clock": self.clock,
                    "threads_used": self.threads,
                    "scale_used": self.scale,
                    "pixel_range_used": self.pixel_range,
                    "notes": list(self.notes),
                    "stopped": self.stopped,
                },
            }
        )

    @classmethod
    def from_dict(cls, blocks: Mapping[str, Any], *, environment: Mapping[str, Any] | None = None,
                  source: str = "<dict>") -> RunResult:
        """The run whose :meth:`to_dict` gave ``blocks``.

        Raw values are checked one by one, then every figure the blocks state (runtime, memory,
        PSNR) against what their raw record gives: a figure edited by hand, or one that makes no
        sense (a string, a negative or zero runtime), is a ResultFileError naming the field.
        """
        blocks = {
            "run_config": mapping(blocks.get("run_config"), "run_config", source),
            "runtime": mapping(blocks.get("runtime"), "runtime", source),
            "memory": mapping(blocks.get("memory"), "memory", source, optional=True),
            "quality": mapping(blocks.get("quality"), "quality", source, optional=True),
            "data": mapping(blocks.get("data"), "data", source, optional=True),
        }
        cfg = blocks["run_config"]
        split_names = mapping(blocks["runtime"].get("splits"), "runtime.splits", source)
        try:
            config = RunConfig.from_dict(cfg)
        except UsageError as exc:
            raise ResultFileError(f"{source}: run_config: {exc}") from None
        run = cls(
            config=config,
            device=text(cfg.get("device_resolved"), "run_config.device_resolved", source),
            clock=text(cfg.get("clock"), "run_config.clock", source),
            threads=number(cfg.get("threads_used"), "run_config.threads_used", source,
                           low="positive", optional=False, integer=True),
            scale=number(cfg.get("scale_used"), "run_config.scale_used", source,
                         low="positive", integer=True),
            pixel_range=number(cfg.get("pixel_range_used"), "run_config.pixel_range_used",
                               source, low="positive", optional=False, integer=True),
            splits=tuple(SplitResult.from_blocks(n, blocks, source,
                                                 config.protocol.trial_choice)
                         for n in split_names),
            data=dict(blocks["data"]),
            environment=dict(environment or {}),
            notes=tuple(text(n, "run_config.notes", source)
                        for n in array(cfg.get("notes"), "run_config.notes", source,
                                       optional=True)),
            stopped=text(cfg.get("stopped"), "run_config.stopped", source, optional=True),
        )
        check_stated_figures(blocks, run.to_dict(), source)
        return run

    def _runtime_block(self) -> dict[str, Any]:
        return {
            "runtime_ms": self.runtime_ms,
            "definition": (
                "per split: per-image mean of the best trial; runtime_ms: mean of the split "
                "figures (NTIRE ESR)" if self.config.protocol.trial_choice == "best" else
                "per split: per-image means (the first image included) averaged over the "
                f"{self.config.trials} runs; runtime_ms: mean of the split figures "
                f"({self.config.protocol.name} protocol, NTIRE 2024-2026)"),
            "protocol": self.config.protocol.name,
            "challenge": self.config.challenge,
            "clock": self.clock,
            "device": self.device,
            "dtype": self.config.dtype,
            "trials": self.config.trials,
            "splits": {s.name: s.runtime_dict() for s in self.splits},
        }

    def _memory_block(self) -> dict[str, Any]:
        chosen = self._memory_split()
        rec = chosen.memory if chosen else {}
        if rec.get("kind") == "cuda":
            figure = rec.get("max_allocated_mib")
            kind = "cuda_max_memory_allocated"
            note = (f"torch.cuda.max_memory_allocated over the {chosen.name} split, peak reset "
                    "at its start (the challenge's figure)" if rec.get("peak_reset", True) else
                    f"torch.cuda.max_memory_allocated after the {chosen.name} split, the peak "
                    "never reset since the run began (the organisers' script)")
        else:
            figure = rec.get("peak_rss_growth_mib")
            kind = "cpu_peak_rss_growth"
            note = (f"CPU run: peak resident-memory growth during the {chosen.name} split "
                    f"({rec.get('method', 'unavailable')}); not comparable with the challenge's "
                    "GPU figure" if chosen else "no split was run")
        block = {"memory_mib": figure, "kind": kind, "split": chosen.name if chosen else None,
                 "note": note, "splits": {s.name: s.memory for s in self.splits}}
        if rec.get("kind") == "cuda":
            block["activation_peak_mib"] = rec.get("activation_peak_mib")
            block["max_reserved_mib"] = rec.get("max_reserved_mib")
        return block

    def _quality_block(self) -> dict[str, Any]:
        names = list(dict.fromkeys(["valid", "test", *[s.name for s in self.splits]]))
        psnr_db: dict[str, float | None] = dict.fromkeys(names)
        ssim_v: dict[str, float | None] = dict.fromkeys(names)
        per_image: dict[str, list[dict[str, Any]]] = {}
        notes: list[str] = []
        capped = 0
        for s in self.splits:
            if s.quality:
                summary = mean_psnr([q.psnr_db for q in s.quality])
                psnr_db[s.name] = summary.mean_db
                capped += summary.capped
                ssims = [q.ssim for q in s.quality if q.ssim is not None]
                ssim_v[s.name] = sum(ssims) / len(ssims) if ssims else None
                per_image[s.name] = [
                    {"image": q.image, "psnr_db": min(q.psnr_db, PSNR_CAP_DB), "ssim": q.ssim}
                    for q in s.quality
                ]
            if s.quality_note:
                notes.append(f"{s.name}: {s.quality_note}")
        if capped:
            notes.append(f"{capped} image(s) identical to HR: PSNR capped at {PSNR_CAP_DB:g} dB")
        return {
            "psnr_db": psnr_db,
            "ssim": ssim_v,
            "channel": "y" if self.config.psnr_y else "rgb",
            "pixel_range": self.pixel_range,
            "scale": self.scale,
            "shave": self.scale,
            "per_image": per_image,
            "split_notes": {s.name: s.quality_note for s in self.splits},
            "note": "; ".join(notes) or None,
        }


# The figures a result states and the reports rank, with the lowest value that makes sense.
_STATED = (("runtime", "runtime_ms", "positive"), ("memory", "memory_mib", "non-negative"))


def check_stated_figures(stored: Mapping[str, Any], rebuilt: Mapping[str, Any],
                         source: str) -> None:
    """Each figure ``stored`` states must make sense and equal the one ``rebuilt`` derives."""
    pairs = [(f"{block}.{key}", stored[block].get(key), rebuilt[block].get(key), low)
             for block, key, low in _STATED]
    for name, split in mapping(stored["runtime"].get("splits"), "runtime.splits",
                               source).items():
        pairs.append((f"runtime.splits.{name}.runtime_ms", split.get("runtime_ms"),
                      rebuilt["runtime"]["splits"][name]["runtime_ms"], "positive"))
    psnr = mapping(stored["quality"].get("psnr_db"), "quality.psnr_db", source, optional=True)
    for name, value in psnr.items():
        pairs.append((f"quality.psnr_db.{name}", value, rebuilt["quality"]["psnr_db"].get(name),
                      "non-negative"))
    for name, value, derived, low in pairs:
        value = number(value, name, source, low=low)
        if not _same(value, derived):
            raise ResultFileError(
                f"{source}: {name} is {value!r}, but the samples and records it summarises give "
                f"{derived!r}: the file was edited or is damaged"
            )


def _same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def _shape(value: Any, where: str, source: str) -> tuple[int, int]:
    dims = array(value, where, source)
    if len(dims) != 2:
        raise ResultFileError(f"{source}: {where} is not an (h, w) pair")
    h, w = (number(d, where, source, low="positive", optional=False, integer=True) for d in dims)
    return h, w


def _image_qualities(quality: Mapping[str, Any], name: str,
                     source: str) -> tuple[ImageQuality, ...]:
    per_image = mapping(quality.get("per_image"), "quality.per_image", source, optional=True)
    out = []
    for i, rec in enumerate(array(per_image.get(name), f"quality.per_image.{name}", source,
                                  optional=True)):
        where = f"quality.per_image.{name}[{i}]"
        rec = mapping(rec, where, source)
        value = number(rec.get("psnr_db"), f"{where}.psnr_db", source, optional=False)
        out.append(ImageQuality(
            image=text(rec.get("image"), f"{where}.image", source),
            # Written capped: the cap stands for an output identical to its reference.
            psnr_db=math.inf if value >= PSNR_CAP_DB else value,
            ssim=number(rec.get("ssim"), f"{where}.ssim", source, low="any"),
        ))
    return tuple(out)


def _split_note(quality: Mapping[str, Any], name: str, source: str) -> str | None:
    notes = mapping(quality.get("split_notes"), "quality.split_notes", source, optional=True)
    if notes:
        return text(notes.get(name), f"quality.split_notes.{name}", source, optional=True)
    # Files written before split_notes existed: the joined note is "valid: ...; test: ...".
    joined = text(quality.get("note"), "quality.note", source, optional=True) or ""
    for part in joined.split("; "):
        if part.startswith(f"{name}: "):
            return part[len(name) + 2:]
    return None
