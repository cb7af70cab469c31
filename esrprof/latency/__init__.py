"""Latency: the gate, its baselines, and the sampling every latency door shares.

Five rooms, each importing only the ones listed before it:

* ``isolation``  -- user code in a child process whose death is seen (no answer is a failure);
* ``statistics`` -- pure numpy: block minima, block ratios, bootstrap intervals, estimates;
* ``sampling``   -- the time budget, interleaved pairs, one model's latency (warm-up, threads
  pinned, flags restored, failures as one-line errors);
* ``baseline``   -- the baseline file: format, reading, writing, the base rebuilt from its
  stored source;
* ``gate``       -- the decision: pick the base, time, decide, the verdict.

The doors that run user code for a verdict (the CLI's ``gate`` and ``baseline save``, the
pytest fixture) run it through ``isolation``.

The CLI's ``gate`` and ``baseline`` commands, the pytest plugin and the training-loop monitor
are doors over these; none keeps a copy of their logic.
"""
