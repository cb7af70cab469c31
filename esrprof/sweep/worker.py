"""The child process of one sweep entry: ``python -m esrprof.sweep.worker TASK.json``.

It builds the entry's model, counts it, predicts its GPU figures, runs it when the sweep asks,
and writes one ordinary result record (``Result.save``) to the path the task names, the file
`esrprof report` reads. Anything else — a model that raises, calls ``sys.exit``, hangs or dies —
ends this process only; the parent reads the outcome from the exit code, the record's presence
and the last ``esrprof: error:`` line of the log.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

_STARTED = time.perf_counter()  # the interpreter is up: what comes before is process start

from esrprof.sweep.child import ERROR_PREFIX, TOKEN_KEY  # noqa: E402

TIMINGS_PREFIX = "esrprof: sweep timings: "  # one log line: seconds per phase, for the benchmark


def run_task(task: dict[str, Any]) -> Path:
    """Build, count, predict (and run) one entry; returns the record's path."""
    import dataclasses

    from esrprof import api
    from esrprof.loading import load_model
    from esrprof.sweep.entries import Entry

    marks = {"imports": time.perf_counter()}
    entry = Entry.from_dict(task["entry"])
    rules = task.get("rules", {})
    loaded = load_model(entry.model, entry.kwargs, entry.weights,
                        allow_pickle=bool(rules.get("allow_pickle")), name=entry.name)
    for note in loaded.notes:  # the entry's log keeps it
        print(f"esrprof: note: {note}", file=sys.stderr)
    year = api.rules_for(rules.get("challenge"))  # None: the latest year's rules
    run_config = None
    if rules.get("run"):
        from esrprof.run import RunConfig

        run_config = RunConfig.for_challenge(
            year.name,
            device=rules.get("device") or "auto",
            tile=entry.tile,
            pixel_range=entry.data_range,
            max_images=rules.get("max_images"),
            data=rules.get("data"),
            trained=entry.weights is not None,
        )
    marks["build"] = time.perf_counter()
    result = api.profile(loaded.model, entry.input_shape, run=run_config, info=loaded.info,
                         challenge=year.name)
    marks["count" if run_config is None else "count+run"] = time.perf_counter()
    gpu = rules.get("gpu") or year.preset.gpu
    if rules.get("predict", True) and gpu:
        prediction, note = api.try_predict(loaded.model, gpu, year.name)
        if prediction is None:
            print(f"esrprof: note: no prediction: {note}", file=sys.stderr)
        result = dataclasses.replace(result, prediction=prediction)
        marks["predict"] = time.perf_counter()
    environment = dict(result.environment)
    environment[TOKEN_KEY] = task["token"]
    if entry.team:
        environment["team"] = entry.team
    result = dataclasses.replace(result, environment=environment)
    path = result.save(task["out"])
    marks["write"] = time.perf_counter()
    last, spent = _STARTED, []
    for phase, at in marks.items():
        spent.append(f"{phase}={at - last:.3f}")
        last = at
    print(TIMINGS_PREFIX + " ".join(spent), file=sys.stderr)
    return path


def main(argv: list[str] | None = None) -> int:
    from esrprof.errors import USER_CODE_ERRORS, EsrprofError, describe, user_code_failed
    from esrprof.jsonio import read_json

    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print(f"{ERROR_PREFIX}usage: python -m esrprof.sweep.worker TASK.json", file=sys.stderr)
        return 2
    try:
        task = read_json(argv[0])
        path = run_task(task)
    except EsrprofError as exc:
        memory = " (out of memory: the sweep caps each entry's address space, --memory-limit)" \
            if isinstance(exc.__cause__, MemoryError) else ""
        print(f"{ERROR_PREFIX}{exc}{memory}", file=sys.stderr)
        return exc.exit_code
    except MemoryError:
        print(f"{ERROR_PREFIX}out of memory (the sweep's memory cap, or the machine's)",
              file=sys.stderr)
        return 1
    except USER_CODE_ERRORS as exc:  # a failure no door turned into an EsrprofError
        message = str(user_code_failed("the entry", exc)) if isinstance(exc, SystemExit) \
            else describe(exc)
        print(f"{ERROR_PREFIX}{message}", file=sys.stderr)
        return 1
    print(f"result written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
