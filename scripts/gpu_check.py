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

``--backend torch`` or ``--backend jax`` checks instead the frozen cells on a GPU under that Keras backend, on
a machine whose Python has PyTorch or JAX with CUDA and no TensorFlow (nothing here imports it): it trains a
small language model, ``Embedding -> keras.layers.RNN(GenotypeCell("darts_v2")) -> Dense``, with Adam on a
synthetic corpus whose next token follows from the current one (``(5 t + 3) mod vocab``), so the loss must go
down; it prints the device, the loss of the first and last timed steps and the steps and tokens per second,
and writes them to the JSON (``--quick``: small sizes). Without a GPU seen by the backend it exits 1
(``--allow-cpu``: go on).

Keras itself may be missing there (the device machines of this workplace have PyTorch and JAX with CUDA, no
Keras): carry its wheels. Here, in the repository's root (``/work/.library/device/README.md``)::

    echo /.whl/ >> .git/info/exclude
    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d .whl keras==3.15.1 namex optree rich markdown-it-py mdurl pygments

then, on the device machine (the ``run`` tool with ``carry: [".whl"]``)::

    python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD
    python3 scripts/gpu_check.py --backend torch --out $OUT/gpu_check_torch.json
    python3 scripts/gpu_check.py --backend jax --out $OUT/gpu_check_jax.json

(the image already has numpy, h5py, ml-dtypes, absl-py and packaging). No GPU has run this path yet.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
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
#: Sizes of the ``--backend`` check: bench.py's ``genotype_train`` size, DARTS' PTB evaluation (appendix A.2.2:
#: 850 units, batch 64, BPTT 35, PTB's 10,000 words), and a ``--quick`` smoke-test size.
BACKEND_SIZES = {"units": 850, "batch": 64, "bptt": 35, "vocab": 10_000, "warmup": 3, "steps": 30}
BACKEND_QUICK = {"units": 32, "batch": 8, "bptt": 10, "vocab": 50, "warmup": 2, "steps": 20}


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


def backend_device(backend: str) -> tuple[str, bool]:
    """The device the Keras ``backend`` computes on, in words, and whether it is a GPU."""
    if backend == "torch":
        import torch

        gpu = torch.cuda.is_available()
        return (torch.cuda.get_device_name(0) if gpu else "cpu") + f" (torch {torch.__version__})", gpu
    import jax

    device = jax.devices()[0]
    return f"{device.device_kind} (jax {jax.__version__}, {device.platform})", device.platform == "gpu"


def synthetic_batches(size: dict[str, int], seed: int = 0):
    """Token windows ``x`` and their next tokens ``y``, where each token is ``(5 t + 3) mod vocab`` of the one
    before it (a first-order rule a recurrent model learns), from random first tokens."""
    import numpy as np

    rng = np.random.default_rng(seed)
    while True:
        tokens = np.empty((size["batch"], size["bptt"] + 1), "int32")
        tokens[:, 0] = rng.integers(0, size["vocab"], size["batch"])
        for t in range(1, size["bptt"] + 1):
            tokens[:, t] = (5 * tokens[:, t - 1] + 3) % size["vocab"]
        yield tokens[:, :-1], tokens[:, 1:]


def train_on_backend(backend: str, size: dict[str, int]) -> dict[str, Any]:
    """Trains ``Embedding -> RNN(GenotypeCell("darts_v2")) -> Dense`` under the Keras ``backend`` (set before
    Keras is imported); the losses of the timed steps and their speed."""
    os.environ["KERAS_BACKEND"] = backend
    import keras

    from tfnas.cells import GenotypeCell

    if keras.backend.backend() != backend:
        raise SystemExit(f"gpu_check: Keras was loaded with the {keras.backend.backend()} backend before "
                         f"--backend {backend} could be set")
    keras.utils.set_random_seed(0)
    inputs = keras.Input((size["bptt"],), dtype="int32")
    h = keras.layers.Embedding(size["vocab"], size["units"])(inputs)
    h = keras.layers.RNN(GenotypeCell("darts_v2", size["units"], seed=0), return_sequences=True)(h)
    model = keras.Model(inputs, keras.layers.Dense(size["vocab"])(h))
    model.compile(optimizer=keras.optimizers.Adam(3e-3, clipnorm=0.25),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    batches = synthetic_batches(size)
    for _ in range(size["warmup"]):  # compiles (jax) and allocates
        model.train_on_batch(*next(batches))
    losses, start = [], time.perf_counter()
    for _ in range(size["steps"]):
        losses.append(float(model.train_on_batch(*next(batches))))  # a float: waits for the device
    seconds = time.perf_counter() - start
    return {"losses": losses, "s_per_step": seconds / size["steps"], "steps_per_s": size["steps"] / seconds,
            "tokens_per_s": size["steps"] * size["batch"] * size["bptt"] / seconds, "keras": keras.__version__,
            "parameters": model.count_params()}


def backend_check(args: argparse.Namespace, start: float) -> int:
    """``--backend``: the frozen cell trained on a GPU under PyTorch or JAX (no TensorFlow imported)."""
    device, gpu = backend_device(args.backend)
    if not gpu and not args.allow_cpu:
        print(f"gpu_check: the {args.backend} backend sees no GPU ({device}); pass --allow-cpu for a smoke test",
              file=sys.stderr)
        return 1
    size = BACKEND_QUICK if args.quick else BACKEND_SIZES
    record = {"check": f"gpu_{args.backend}", "quick": args.quick, "device": device, "gpu": gpu, "size": size,
              "machine": {"python": platform.python_version(), "machine": platform.machine(),
                          "cpus": os.cpu_count(), "node": platform.node()},  # bench.machine_info imports TensorFlow
              **train_on_backend(args.backend, size)}
    record["elapsed_s"] = time.monotonic() - start
    losses = record["losses"]
    record["loss_went_down"] = losses[-1] < losses[0]
    path = args.out or bench.result_path(f"gpu_check_{args.backend}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, default=str), encoding="utf-8")
    print(f"{args.backend} on {device}: DARTS_V2 GenotypeCell LM, {record['parameters']:,} parameters, "
          f"{record['steps_per_s']:.2f} steps/s ({record['s_per_step'] * 1000:.1f} ms/step, "
          f"{record['tokens_per_s']:,.0f} tokens/s); loss {losses[0]:.3f} -> {losses[-1]:.3f} over "
          f"{len(losses)} steps")
    print(f"written {path} ({record['elapsed_s']:.0f} s)")
    return 0 if record["loss_went_down"] else 1


def main(argv: list[str] | None = None) -> int:
    start = time.monotonic()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--allow-cpu", action="store_true", help="run without a GPU (a smoke test)")
    parser.add_argument("--quick", action="store_true", help="bench.py's small sizes and rounds")
    parser.add_argument("--budget-s", type=float, default=540.0,
                        help="seconds from the start after which the cases left are skipped (default 540)")
    parser.add_argument("--out", type=Path, help="the JSON (default benchmarks/results/gpu_check-<UTC time>.json)")
    parser.add_argument("--backend", choices=("tensorflow", "torch", "jax"), default="tensorflow",
                        help="torch or jax: train the frozen DARTS_V2 cell under that Keras backend instead, "
                             "without TensorFlow (default: tensorflow, the checks above)")
    args = parser.parse_args(argv)
    if args.backend != "tensorflow":
        return backend_check(args, start)

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
