"""Which storages are alive at each moment of a forward, and what the CUDA allocator reports.

Two separate steps, so each can be checked on its own:

1. :class:`LivenessObserver` watches a traced forward (meta, fake or real tensors alike) and
   writes down, op by op, every storage the forward creates and the moment its last reference
   dies. Views and in-place ops share their base's storage and create nothing. Deaths are read
   from weak references to the storages themselves, so Python's own reference counting decides,
   exactly as it does for CUDA tensors. The record holds sizes and op labels only: no tensor.
2. :class:`CachingAllocator` replays those events the way PyTorch's CUDA caching allocator
   books them (``c10/cuda/CUDACachingAllocator.cpp``): requests rounded up to 512 bytes, a small
   pool (≤ 1 MiB, carved from 2 MiB segments) and a large one (20 MiB segments for 1–10 MiB,
   larger requests rounded up to 2 MiB), best-fit reuse of cached blocks, a block split only
   when the rest is worth keeping (≥ 512 B small, > 1 MiB large), free neighbours merged.
   ``allocated_bytes`` counts whole blocks, so a request served by a block up to 1 MiB larger
   counts the block: that is what ``torch.cuda.max_memory_allocated()`` reads.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.multiprocessing.reductions import StorageWeakRef

from esrprof.counting.engine import Observer
from esrprof.counting.formulas import op_name

ALLOC, FREE = 1, -1
INPUT_STEP = -1


@dataclass(frozen=True)
class Event:
    """One allocation (``sign`` +1) or free (-1) of ``nbytes``.

    A free at ``step`` happened before op ``step`` ran; an allocation at ``step`` was made by
    it. ``key`` pairs an allocation with its free.
    """

    step: int
    sign: int
    key: int
    nbytes: int


@dataclass(frozen=True)
class Liveness:
    """What one forward allocated and freed, in order, and the op behind each step.

    Step -1 is the input (allocated before the forward); steps 0.. are the ops in call order;
    ``len(labels)`` is the return. ``output_keys`` are the allocations the forward returned.
    """

    events: tuple[Event, ...]
    labels: tuple[tuple[str, str], ...]  # (module path, op name) per step
    input_key: int | None
    output_keys: tuple[int, ...]
    autograd_recorded: bool = False  # the output carries a graph: saved tensors lived on

    def label(self, step: int) -> tuple[str, str]:
        if step < 0:
            return ("", "input")
        return self.labels[step] if step < len(self.labels) else ("", "output")

    def exact_peak(self, include_input: bool = True) -> tuple[int, int]:
        """(peak bytes, step) with every storage at its exact size: no allocator rounding."""
        current = peak = 0
        at = INPUT_STEP
        for e in self.events:
            if not include_input and e.key == self.input_key:
                continue
            current += e.sign * e.nbytes
            if current > peak:
                peak, at = current, e.step
        return peak, at

    def nbytes(self, key: int | None) -> int:
        if key is None:
            return 0
        for e in self.events:
            if e.key == key and e.sign == ALLOC:
                return e.nbytes
        return 0


class _Entry:
    __slots__ = ("key", "module", "nbytes", "ref")

    def __init__(self, ref: StorageWeakRef, nbytes: int, key: int | None, module: str):
        self.ref, self.nbytes, self.key, self.module = ref, nbytes, key, module


class LivenessObserver(Observer):
    """An engine observer that records storage births and deaths (see the module docstring).

    It keeps weak references only: observing never extends a tensor's life.

    One correction: under any Python dispatch mode, ``aten::linear`` adds its bias *out of
    place* ("composite compliance" for tensor subclasses), where a plain forward adds it in
    place. A trace therefore shows one transient output-sized tensor per Linear with a
    matmul-then-bias path that no plain forward allocates; the bias add of an ``nn.Linear``
    (the engine's ``linear_modules``: subclasses included) is booked as in place.
    """

    def __init__(self) -> None:
        self._events: list[Event] = []
        self._labels: list[tuple[str, str]] = []
        # storage id -> entry; key None marks storages made before the forward (parameters,
        # buffers, constants): they exist on the GPU already and are not the forward's
        self._live: dict[int, _Entry] = {}
        self._next_key = 0
        self._input_key: int | None = None
        self.result: Liveness | None = None

    # -- observer protocol ------------------------------------------------------------------

    def on_input(self, x: torch.Tensor) -> None:
        self._input_key = self._birth(x, INPUT_STEP, "")

    def on_op(self, func: Any, args: tuple, kwargs: dict, out: Any, module: str) -> None:
        step = len(self._labels)
        name = op_name(func)
        self._labels.append((module, name))
        self._reap(step)
        for t in tensors_in((args, kwargs)):
            self._known(t, module)  # what an op reads and we never saw born existed before
        if (
            name == "aten.add"
            and module in self.linear_modules
            and self._linear_bias_add(args, out, module)
        ):
            return
        for t in tensors_in(out):
            self._birth(t, step, module)

    def on_output(self, out: Any) -> None:
        self._reap(len(self._labels))
        keys = []
        for t in tensors_in(out):
            entry = self._live.get(_sid(t))
            if entry is not None and entry.key is not None:
                keys.append(entry.key)
        self.result = Liveness(
            tuple(self._events), tuple(self._labels), self._input_key,
            tuple(dict.fromkeys(keys)),
            any(t.requires_grad for t in tensors_in(out)),
        )

    # -- bookkeeping ------------------------------------------------------------------------

    def _reap(self, step: int) -> None:
        """Free every storage whose last reference died since the previous op."""
        dead = [sid for sid, e in self._live.items() if e.key is not None and e.ref.expired()]
        for sid in dead:
            e = self._live.pop(sid)
            self._events.append(Event(step, FREE, e.key, e.nbytes))  # type: ignore[arg-type]

    def _lookup(self, t: torch.Tensor) -> _Entry | None:
        sid = _sid(t)
        entry = self._live.get(sid)
        if entry is not None and entry.ref.expired():  # a dead storage's id, reused
            if entry.key is not None:
                self._events.append(Event(len(self._labels) - 1, FREE, entry.key, entry.nbytes))
            del self._live[sid]
            entry = None
        return entry

    def _known(self, t: torch.Tensor, module: str) -> None:
        if self._lookup(t) is None:
            storage = t.untyped_storage()
            self._live[_sid(t)] = _Entry(StorageWeakRef(storage), storage.nbytes(), None, module)

    def _birth(self, t: torch.Tensor, step: int, module: str) -> int | None:
        entry = self._lookup(t)
        storage = t.untyped_storage()
        nbytes = storage.nbytes()
        if entry is not None:
            if entry.key is not None and nbytes != entry.nbytes:  # resized by an out= op
                self._events.append(Event(step, FREE, entry.key, entry.nbytes))
                entry.key = self._new_key()
                entry.nbytes = nbytes
                self._events.append(Event(step, ALLOC, entry.key, nbytes))
            return entry.key
        key = self._new_key()
        self._live[_sid(t)] = _Entry(StorageWeakRef(storage), nbytes, key, module)
        self._events.append(Event(step, ALLOC, key, nbytes))
        return key

    def _linear_bias_add(self, args: tuple, out: Any, module: str) -> bool:
        """Book ``matmul result + bias`` inside an nn.Linear as the in-place add it would be
        without a dispatch mode: the result's storage takes over the matmul's allocation."""
        if not (isinstance(out, torch.Tensor) and args and isinstance(args[0], torch.Tensor)):
            return False
        src = self._live.get(_sid(args[0]))
        if (
            src is None
            or src.key is None
            or src.module != module
            or args[0].shape != out.shape
            or out.untyped_storage().nbytes() != src.nbytes
        ):
            return False
        del self._live[_sid(args[0])]
        storage = out.untyped_storage()
        self._live[_sid(out)] = _Entry(StorageWeakRef(storage), src.nbytes, src.key, module)
        return True

    def _new_key(self) -> int:
        self._next_key += 1
        return self._next_key


def _sid(t: torch.Tensor) -> int:
    return t.untyped_storage()._cdata


def tensors_in(tree: Any) -> Iterable[torch.Tensor]:
    """The tensors in an op's arguments or output (tuples, lists and dicts of them), in
    order. A plain walk: aten arguments nest no deeper, and pytree costs 3x more per op."""
    if isinstance(tree, torch.Tensor):
        yield tree
    elif isinstance(tree, (tuple, list)):
        for item in tree:
            yield from tensors_in(item)
    elif isinstance(tree, dict):
        for item in tree.values():
            yield from tensors_in(item)


# ------------------------------------------------------------------------ allocator model

K_MIN_BLOCK = 512  # every request is rounded up to a multiple of this
K_SMALL_SIZE = 1 << 20  # requests up to 1 MiB use the small pool
K_SMALL_BUFFER = 2 << 20  # small-pool segments
K_LARGE_BUFFER = 20 << 20  # segment for requests between 1 and 10 MiB
K_MIN_LARGE_ALLOC = 10 << 20
K_ROUND_LARGE = 2 << 20  # larger requests get segments rounded up to 2 MiB


def round_size(nbytes: int) -> int:
    """The allocator's block size for a request (``round_size``)."""
    if nbytes < K_MIN_BLOCK:
        return K_MIN_BLOCK
    return K_MIN_BLOCK * ((nbytes + K_MIN_BLOCK - 1) // K_MIN_BLOCK)


def segment_size(size: int) -> int:
    """What cudaMalloc is asked for when no cached block fits (``get_allocation_size``)."""
    if size <= K_SMALL_SIZE:
        return K_SMALL_BUFFER
    if size < K_MIN_LARGE_ALLOC:
        return K_LARGE_BUFFER
    return K_ROUND_LARGE * ((size + K_ROUND_LARGE - 1) // K_ROUND_LARGE)


@dataclass(eq=False)
class Block:
    addr: int
    size: int
    small: bool  # the pool of its segment
    free: bool = True
    prev: Block | None = None
    next: Block | None = None


@dataclass
class CachingAllocator:
    """A single-stream model of the CUDA caching allocator's block bookkeeping.

    ``allocated`` / ``peak`` mirror ``allocated_bytes.current`` / ``.peak``; ``reserved`` the
    segments obtained from cudaMalloc (never returned: nothing calls ``empty_cache``).
    """

    allocated: int = 0
    peak: int = 0
    reserved: int = 0
    # free blocks per pool, ordered as the allocator's std::set: by size, then address
    _pools: dict[bool, list[tuple[int, int, Block]]] = field(
        default_factory=lambda: {True: [], False: []}
    )
    _next_addr: int = 0

    def malloc(self, nbytes: int) -> Block | None:
        if nbytes <= 0:  # an empty tensor gets no block
            return None
        size = round_size(nbytes)
        small = size <= K_SMALL_SIZE
        pool = self._pools[small]
        i = bisect.bisect_left(pool, (size, -1))
        if i < len(pool):  # best fit: the smallest cached block that holds the request
            block = pool.pop(i)[2]
        else:
            seg = segment_size(size)
            block = Block(self._next_addr, seg, small)
            self._next_addr += seg
            self.reserved += seg
        remaining = block.size - size
        if (remaining >= K_MIN_BLOCK) if small else (remaining > K_SMALL_SIZE):
            rest = Block(block.addr + size, remaining, small, True, block, block.next)
            if block.next is not None:
                block.next.prev = rest
            block.next = rest
            block.size = size
            bisect.insort(pool, (rest.size, rest.addr, rest))
        block.free = False
        self.allocated += block.size
        self.peak = max(self.peak, self.allocated)
        return block

    def free(self, block: Block | None) -> None:
        if block is None:
            return
        self.allocated -= block.size
        block.free = True
        pool = self._pools[block.small]
        prev, nxt = block.prev, block.next
        if prev is not None and prev.free:  # merge into the free block before
            pool.remove((prev.size, prev.addr, prev))
            prev.size += block.size
            prev.next = nxt
            if nxt is not None:
                nxt.prev = prev
            block = prev
        if nxt is not None and nxt.free:  # and absorb the free block after
            pool.remove((nxt.size, nxt.addr, nxt))
            block.size += nxt.size
            block.next = nxt.next
            if nxt.next is not None:
                nxt.next.prev = block
        bisect.insort(pool, (block.size, block.addr, block))

    def reset_peak(self) -> None:
        """``torch.cuda.reset_peak_memory_stats()``: the peak restarts from what is held."""
        self.peak = self.allocated


@dataclass(frozen=True)
class Replay:
    """What the allocator model reads over the measured forward."""

    peak_bytes: int  # max_memory_allocated, weights included
    weights_bytes: int  # the blocks holding parameters and buffers
    peak_step: int  # the op whose allocation set the peak (-1: the input)


def replay(
    liveness: Liveness, weight_sizes: Sequence[int], warmup: Sequence[Liveness] = ()
) -> Replay:
    """Weights allocated once, ``warmup`` forwards (their blocks cached, as in a run over
    earlier images), the peak reset, then ``liveness``'s forward: the allocator's peak."""
    alloc = CachingAllocator()
    for n in weight_sizes:
        alloc.malloc(n)
    weights = alloc.allocated
    for earlier in warmup:
        _run(alloc, earlier, None)
    alloc.reset_peak()
    at = [INPUT_STEP]
    _run(alloc, liveness, at)
    return Replay(alloc.peak, weights, at[0])


def _run(alloc: CachingAllocator, liveness: Liveness, at: list[int] | None) -> None:
    blocks: dict[int, Block | None] = {}
    for e in liveness.events:
        if e.sign == ALLOC:
            before = alloc.peak
            blocks[e.key] = alloc.malloc(e.nbytes)
            if at is not None and alloc.peak > before:
                at[0] = e.step
        else:
            alloc.free(blocks.pop(e.key))
    for b in blocks.values():  # the input and output die before the next image arrives
        alloc.free(b)


def weight_sizes(model: torch.nn.Module, dtype: torch.dtype | None = None) -> list[int]:
    """Bytes of each parameter and buffer: one allocation each once ``model.cuda()`` ran
    (floating ones in ``dtype`` when given, as ``model.to(dtype)`` would make them)."""
    seen: set[int] = set()
    sizes = []
    for t in (*model.parameters(), *model.buffers()):
        if id(t) in seen:
            continue
        seen.add(id(t))
        itemsize = t.element_size()
        if dtype is not None and t.is_floating_point():
            itemsize = torch.empty((), dtype=dtype).element_size()
        sizes.append(t.numel() * itemsize)
    return sizes


__all__ = [
    "CachingAllocator",
    "Event",
    "Liveness",
    "LivenessObserver",
    "Replay",
    "replay",
    "round_size",
    "segment_size",
    "weight_sizes",
]
