"""Counting: the ntire2022 module-hook convention and the complete dispatch-level count.

``engine`` (trace, count), ``formulas`` (the registry of shape-only MAC formulas and the op
kinds), ``shapes`` (the meta fast path), ``ntire2022`` (the challenge's rules), ``divergence``,
``peers`` (fvcore and thop cross-checks). Nothing is imported here, so that low modules (the
result records) can read the op kinds without loading the engine.
"""
