"""GPU check: the training and DARTS search steps on the GPU, and bench.py's cases there at the paper settings.

1. Without a GPU visible to TensorFlow it exits 1 (``--allow-cpu``: go on,
   for a smoke test with ``--quick``).
2. Placement: one `Trainer.train_step` (DARTS_V2 cell) and one first-order
   DARTS search step at bench.py's quick sizes, in this process; the devices
   of the models' trainable variables and of the steps' outputs are
   recorded, and each must be the GPU (the CPU with ``--allow-cpu`` and no
   GPU).
3. bench.py's `CASES`, most wanted first, each in a process of its own, at
   the paper settings with `GPU_ROUNDS` (``--quick``: bench.py's quick
   settings): the plain, ``_mixed`` (float16 with loss scaling on a GPU)
   and ``_xla`` training steps, the DARTS steps, XLA's first-order step and
   the scoring group. A case runs only while ``--budget-s`` seconds (from
   the start) are not spent, and is killed when they are; the cases left
   are listed as skipped.
4. One JSON (written again after each case): the GPU (name, compute
   capability, ``nvidia-smi``), TensorFlow's CUDA build, versions, the
   placement and bench.py's figures; ``python scripts/bench.py --table``'s
   `markdown_table` reads it too. The table of bench.py's report is
   printed, then each ``_xla`` / ``_mixed`` case's ratio to its plain case.

    python scripts/gpu_check.py                                   # on a GPU, under 10 minutes
    python scripts/gpu_check.py --allow-cpu --quick --budget-s 120 --out /tmp/gpu_check.json
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

_spec = importlib.util.spec_from_file_location("bench", Path(__file__).with_name("bench.py"))
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)  # also quiets TensorFlow's C++ logs before it is imported

#: bench.py cases and groups, most wanted first: ``train`` is lstm_train and genotype_train, ``search``
#: lstm_search, darts1 and darts2, ``score`` the three scoring runtimes (after an export).
CASES = ("train", "search", "genotype_train_mixed", "genotype_train_xla", "genotype_train_xla_mixed",
         "lstm_train_mixed", "darts1_xla", "score")
#: Rounds at the paper settings: a GPU step takes milliseconds, so more of them than bench.py's 3.
GPU_ROUNDS = {"warmup": 5, "timed": 20}
#: A case is started only with this many seconds of the budget left.
MIN_CASE_S = 20.0


def _devices(tensors: list[Any]) -> list[str]:
    """The distinct devices of tensors or variables (a variable's is that of a read of it)."""
    import tensorflow as tf

    return sorted({tf.convert_to_tensor(t).device for t in tensors})


def _placement(model, call: Callable[[], Any], device_type: str) -> dict[str, Any]:
    """Runs ``call`` once: the devices of ``model``'s trainable variables and of the outputs; all ``device_type``?"""
    import tensorflow as tf

    found = {"variables": _devices(model.trainable_variables), "outputs": _devices(tf.nest.flatten(call()))}
    return {**found, "placed": all(f":{device_type}:" in d for ds in found.values() for d in ds)}


def check_placement(device_type: str) -> dict[str, Any]:
    """A training step (DARTS_V2) and a first-order DARTS step at bench.py's quick sizes, on ``device_type``?"""
    from tfnas.genotypes.files import resolve_genotype

    s = bench.QUICK
    trainer, train = bench.train_step_call(resolve_genotype("darts_v2"), s["train_nhid"], s["train_batch"], s)
    search, darts = bench.darts_step_call(1, s)
    steps = {"train_step": _placement(trainer.model, train, device_type),
             "darts1_step": _placement(search.model, darts, device_type)}
    return {"device_type": device_type, **steps, "ok": all(p["placed"] for p in steps.values())}


def gpu_info(gpus: list) -> dict[str, Any]:
    """Each GPU's name and compute capability, TensorFlow's CUDA build, Keras' version, ``nvidia-smi``'s output."""
    import keras
    import tensorflow as tf

    from tfnas.lm.precision import mixed_policy_name

    smi = shutil.which("nvidia-smi")
    return {"gpus": [tf.config.experimental.get_device_details(g) for g in gpus], "keras": keras.__version__,
            "tensorflow_build": dict(tf.sysconfig.get_build_info()), "mixed_policy": mixed_policy_name(),
            "nvidia_smi": subprocess.run([smi], capture_output=True, text=True, timeout=60).stdout if smi else None}


def run_cases(record: dict[str, Any], quick: bool, overrides: dict, deadline: float,
              write: Callable[[], None]) -> None:
    """Runs `CASES` in turn into ``record`` (results, failed, skipped) until ``deadline``, writing after each."""
    for case in CASES:
        left = deadline - time.monotonic()
        if left < MIN_CASE_S:
            record["skipped"][case] = f"budget spent ({max(left, 0):.0f} s left)"
            continue
        print(f"running {case} ({left:.0f} s of the budget left)", flush=True)
        try:
            for name, figures in bench.run_in_subprocess(case, quick, overrides, timeout=left).items():
                record["results"].setdefault(name, {}).update(figures)
        except subprocess.TimeoutExpired:
            record["skipped"][case] = f"killed when the budget ran out, after {left:.0f} s"
        except RuntimeError as err:
            record["failed"][case] = str(err)[-3000:]
            print(f"{case} failed: {str(err).splitlines()[-1]}", flush=True)
        write()


def summary(results: dict[str, dict]) -> list[str]:
    """bench.py's report, then each ``_xla`` / ``_mixed`` case's ratio to its plain case and the GPU peaks."""
    lines = bench.report(results)
    for case, r in results.items():
        plain = bench.split_case(case)[0]
        if plain != case and "s_per_step" in r and "s_per_step" in results.get(plain, {}):
            lines.append(f"{case}: {r['s_per_step'] / results[plain]['s_per_step']:.2f}x {plain}")
    peaks = [f"{case} {r['peak_gpu_gb']:.2f}" for case, r in results.items() if "peak_gpu_gb" in r]
    if peaks:
        lines.append("peak GPU memory of the case's process, GB: " + ", ".join(peaks))
    return lines


def main(argv: list[str] | None = None) -> int:
    start = time.monotonic()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--allow-cpu", action="store_true", help="run without a GPU (a smoke test)")
    parser.add_argument("--quick", action="store_true", help="bench.py's small sizes and rounds")
    parser.add_argument("--budget-s", type=float, default=540.0,
                        help="seconds from the start after which the cases left are skipped (default 540)")
    parser.add_argument("--out", type=Path, help="the JSON (default benchmarks/results/gpu_check-<UTC time>.json)")
    args = parser.parse_args(argv)

    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus and not args.allow_cpu:
        print("gpu_check: TensorFlow sees no GPU (tf.config.list_physical_devices('GPU') is empty); "
              "pass --allow-cpu for a smoke test on the CPU", file=sys.stderr)
        return 1
    for gpu in gpus:  # the placement check's models stay in this process: leave the GPU to the cases' processes
        tf.config.experimental.set_memory_growth(gpu, True)

    path = args.out or bench.result_path("gpu_check")
    overrides = {} if args.quick else GPU_ROUNDS
    record: dict[str, Any] = {
        "check": "gpu", "quick": args.quick, "budget_s": args.budget_s, "cases": ",".join(CASES),
        "settings": bench.bench_settings(args.quick, overrides),
        "machine": {**bench.machine_info(), **gpu_info(gpus)}, "results": {}, "failed": {}, "skipped": {}}

    def write() -> None:
        record["elapsed_s"] = time.monotonic() - start
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record, indent=2, default=str), encoding="utf-8")

    record["placement"] = check_placement("GPU" if gpus else "CPU")
    print(f"placement: {json.dumps(record['placement'])}", flush=True)
    write()
    run_cases(record, args.quick, overrides, start + args.budget_s, write)
    record["report"] = summary(record["results"])
    write()
    print("\n".join(record["report"]))
    for case, why in record["skipped"].items():
        print(f"skipped {case}: {why}")
    print(f"written {path} ({record['elapsed_s']:.0f} s)")
    return 0 if record["placement"]["ok"] and not record["failed"] else 1


if __name__ == "__main__":
    sys.exit(main())
