"""Throughput of WeNet's vectorised `WeightedCells` against the same M cells run one after another.

Both variants compute eq. 4, ``h_t = sum_k softmax(w)_k N_k(x_t, h_{t-1})``,
over a ``[batch, bptt, emsize]`` input with the same parameters, and time one
training step (forward and backward through the whole sequence, gradients
of every parameter and of ``w``) inside one ``tf.function``:

* ``vectorised``: `WeightedCells` (stacked weights, batched matmuls, gathered
  predecessors) in `CellRNN`;
* ``sequential``: M `GenotypeCell` s, each stepped in turn by a Python loop
  inside the same fused time loop, their outputs mixed by ``softmax(w)``.

The figure of merit is networks x tokens per second: ``M * batch * bptt /
step time``. Each variant runs in its own subprocess so that the peak
resident memory (``resource.getrusage``) is its own; the two losses are
compared to check that both compute the same function. Results go to
``benchmarks/results/wenet.json`` with the machine.

    python scripts/bench_wenet.py            # B = 100 networks, the paper's sizes (L 8, 200 units, batch 20, bptt 35)
    python scripts/bench_wenet.py --quick    # B = 100 networks of 32 units, batch 8: a minute
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"

FULL = {"networks": 100, "steps": 8, "nhid": 200, "emsize": 200, "batch": 20, "bptt": 35, "norm": "none",
        "timed": 3, "warmup": 1}
QUICK = {**FULL, "nhid": 32, "emsize": 32, "batch": 8}


def _peak_rss_mb() -> float:
    """Peak resident memory of this process (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 ** 2 if sys.platform == "darwin" else peak / 1024


def run_variant(variant: str, s: dict) -> dict:
    """Builds one variant, times its training step, returns the figures."""
    import keras
    import numpy as np
    import tensorflow as tf
    from keras.src.layers.rnn.dropout_rnn_cell import DropoutRNNCell

    from tfnas.cells import CellRNN
    from tfnas.cells.search.weighted_cells import WeightedCells
    from tfnas.spaces import DagSpace

    class SequentialCells(keras.layers.Layer, DropoutRNNCell):
        """Eq. 4 with the M cells stepped one after another (the reference of the benchmark)."""

        def __init__(self, cells, logits):
            super().__init__()
            self.cells, self.logits = cells, logits
            self.units = cells[0].units
            self.state_size = self.output_size = self.units
            self.dropout = self.recurrent_dropout = 0.0
            self.seed_generator = keras.random.SeedGenerator(0)

        def project_inputs(self, x):
            return tf.concat([c.project_inputs(x) for c in self.cells], axis=-1)

        def prepare(self):
            return [tf.nn.softmax(self.logits)] + [c.prepare() for c in self.cells]

        def transition(self, x_proj, states, prepared, h_mask=None):
            probs, width = prepared[0], x_proj.shape[-1] // len(self.cells)  # each cell's input projection
            outs = [c.transition(x_proj[:, k * width:(k + 1) * width], states, prepared[1 + k], h_mask)[0]
                    for k, c in enumerate(self.cells)]
            h = tf.add_n([probs[k] * o for k, o in enumerate(outs)])
            return h, [h]

    keras.utils.set_random_seed(0)
    genotypes = DagSpace(s["steps"]).sample_unique(s["networks"], np.random.default_rng(0))
    weighted = WeightedCells.from_genotypes(genotypes, s["nhid"], s["emsize"], norm=s["norm"], seed=1)
    weighted.network_logits.assign(np.random.default_rng(1).normal(size=s["networks"]).astype("float32"))
    if variant == "vectorised":
        cell = weighted
        variables = [weighted.W0, weighted.Ws, weighted.network_logits]
    else:
        singles = [weighted.get_network(k, name=f"net{k}") for k in range(s["networks"])]
        logits = tf.Variable(weighted.network_logits.numpy(), name="network_logits")
        cell = SequentialCells(singles, logits)
        variables = [v for c in singles for v in (c.W0, c.Ws)] + [logits]
        del weighted
    rnn = CellRNN(cell)
    rng = np.random.default_rng(2)
    x = tf.constant(rng.normal(size=(s["batch"], s["bptt"], s["emsize"])).astype("float32"))
    target = tf.constant(rng.normal(size=(s["batch"], s["bptt"], s["nhid"])).astype("float32"))
    h0 = tf.constant(rng.normal(size=(s["batch"], s["nhid"])).astype("float32"))

    @tf.function(jit_compile=s.get("jit") or None)
    def step():
        with tf.GradientTape() as tape:
            out, _ = rnn(x, initial_state=[h0], training=True)
            loss = tf.reduce_mean(tf.square(out - target))
        grads = tape.gradient(loss, variables)
        return loss, tf.add_n([tf.reduce_sum(tf.square(g)) for g in grads])

    start = time.perf_counter()
    loss, _ = step()
    float(loss)
    first = time.perf_counter() - start
    for _ in range(s["warmup"]):
        float(step()[1])
    times = []
    for _ in range(s["timed"]):
        start = time.perf_counter()
        float(step()[1])
        times.append(time.perf_counter() - start)
    step_s = float(sorted(times)[len(times) // 2])
    tokens = s["batch"] * s["bptt"]
    return {"variant": variant, "loss": float(loss), "first_call_s": first, "step_s": step_s,
            "step_times_s": times, "tokens_per_s": tokens / step_s,
            "network_tokens_per_s": s["networks"] * tokens / step_s, "peak_rss_mb": _peak_rss_mb()}


def machine() -> dict:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"platform": platform.platform(), "cpu": cpu, "cpu_count": os.cpu_count(),
            "load_average_1_5_15": [round(v, 2) for v in os.getloadavg()],
            "gpus": [g.name for g in gpus], "python": platform.python_version(), "tensorflow": tf.__version__}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="32 units, batch 8 (still B = 100 networks)")
    parser.add_argument("--networks", type=int, help="M, the networks trained together (default 100 = B)")
    parser.add_argument("--nhid", type=int, help="units of every network (and the input size)")
    parser.add_argument("--batch", type=int)
    parser.add_argument("--timed", type=int, help="timed steps (the median is reported)")
    parser.add_argument("--norm", choices=["none", "batch"], help="node normalisation of the vectorised cells")
    parser.add_argument("--jit", action="store_true", help="compile the step with XLA")
    parser.add_argument("--variants", default="vectorised,sequential")
    parser.add_argument("--out", type=Path, default=RESULTS / "wenet.json")
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    parser.add_argument("--settings", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.variant:   # child process: one variant, JSON on the last line of stdout
        print(json.dumps(run_variant(args.variant, json.loads(args.settings))))
        return 0
    settings = dict(QUICK if args.quick else FULL)
    settings["jit"] = args.jit
    for key in ("networks", "nhid", "batch", "timed", "norm"):
        if getattr(args, key) is not None:
            settings[key] = getattr(args, key)
    if args.nhid is not None:
        settings["emsize"] = args.nhid
    variants = [v for v in args.variants.split(",") if v]
    print(f"WeNet benchmark: {settings}")
    results = {}
    for variant in variants:
        proc = subprocess.run([sys.executable, __file__, "--variant", variant, "--settings", json.dumps(settings)],
                              capture_output=True, text=True, cwd=REPO)
        if proc.returncode != 0:
            print(proc.stderr[-4000:], file=sys.stderr)
            return proc.returncode
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        results[variant] = r
        print(f"{variant:>10}: {r['network_tokens_per_s']:>12,.0f} networks x tokens/s | step {r['step_s']:.3f} s | "
              f"{r['tokens_per_s']:,.0f} tokens/s | first call {r['first_call_s']:.1f} s | "
              f"peak RSS {r['peak_rss_mb']:,.0f} MB | loss {r['loss']:.6f}")
    summary = {"settings": settings, "results": results, "machine": machine(),
               "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
               "command": "python scripts/bench_wenet.py" + (" " + " ".join(argv if argv else sys.argv[1:])).rstrip()}
    if {"vectorised", "sequential"} <= set(results):
        v, q = results["vectorised"], results["sequential"]
        summary["speedup"] = q["step_s"] / v["step_s"]
        summary["loss_rel_diff"] = abs(v["loss"] - q["loss"]) / max(abs(q["loss"]), 1e-12)
        print(f"speed-up of the vectorised cells: {summary['speedup']:.2f}x | "
              f"same function: loss relative difference {summary['loss_rel_diff']:.1e}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    existing = json.loads(args.out.read_text(encoding="utf-8")) if args.out.exists() else {}
    existing["quick" if args.quick else "full"] = summary
    args.out.write_text(json.dumps(existing, indent=1) + "\n", encoding="utf-8")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
