"""scripts/bench.py: its analytic FLOP counts match the models' weights, its report judges the targets, and
``--table`` prints the latest run of the cases asked for."""
import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pytest

from tfnas.genotypes.files import resolve_genotype
from tfnas.cells.search import BayesCell, MixedCell
from tfnas.config import ModelConfig
from tfnas.lm import LanguageModel, cell_arguments, supernet
from tfnas.policies.nao import EncoderPredictorDecoder, NaoTokens
from tfnas.spaces.dag import DagSpace

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "bench.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_flop_counts_are_twice_the_multiply_adds_of_the_weights(bench):
    units, vocab, steps = 12, 50, 4
    settings = ModelConfig(emsize=units, nhid=units)
    mixed = supernet(vocab, MixedCell(steps, **cell_arguments(settings, 0)), settings, 0)
    cell = mixed.cell
    # Node 0 reads [x, h] once; node i's matrix Ws[i-1] is applied to each of its i predecessors.
    macs = cell.W0.shape[0] * cell.W0.shape[1] + sum(i * cell.Ws.shape[1] * cell.Ws.shape[2]
                                                      for i in range(1, steps + 1))
    decoder = mixed.embedding.embeddings.shape[0] * mixed.embedding.embeddings.shape[1]
    assert bench.darts_search_forward_flops(units, vocab, steps) == 2 * (macs + decoder)

    v2 = resolve_genotype("darts_v2")
    model = LanguageModel(vocab, v2, emsize=units, nhid=units, seed=0)
    model.build_weights()
    cell = model.rnn.cell
    macs = cell.W0.shape[0] * cell.W0.shape[1] + cell.Ws.shape[0] * cell.Ws.shape[1] * cell.Ws.shape[2]
    assert bench.genotype_forward_flops(units, vocab, v2.steps) == 2 * (macs + decoder)

    lstm = LanguageModel(vocab, None, emsize=units, nhid=units, seed=0)
    lstm.build_weights()
    kernels = sum(w.shape[0] * w.shape[1] for w in lstm.rnn.weights if len(w.shape) == 2)
    assert bench.lstm_forward_flops(units, vocab) == 2 * (kernels + decoder)


def test_report_gives_ratios_to_the_same_run_baseline_and_judges_each_target(bench):
    def case(seconds, peak=1.0):
        return {"s_per_step": seconds, "tokens_per_s": 100 / seconds, "gflops": 1.0, "peak_rss_gb": peak}

    results = {"lstm_search": case(1.0), "darts1": {**case(7.5, peak=4.5), "peak_rss_own_process": True},
               "darts2": case(16.5),
               "lstm_train": case(2.0), "genotype_train": case(4.0), "score_keras": case(0.5),
               "score_savedmodel": case(0.6), "score_onnx": case(0.4)}
    lines = bench.report(results)
    row = {line.split()[0]: line.split()[-1] for line in lines[1:9]}
    assert row == {"lstm_search": "1.00x", "darts1": "7.50x", "darts2": "16.50x", "lstm_train": "1.00x",
                   "genotype_train": "2.00x", "score_keras": "1.00x", "score_savedmodel": "1.20x",
                   "score_onnx": "0.80x"}
    assert lines[2].split()[-2] == "4.50*"  # measured in a process of its own
    verdicts = [line for line in lines if line.startswith("target")]
    assert verdicts == [
        "target darts1 <= 8.0x lstm_search: 7.50x -> met",
        "target darts2 <= 2.0x darts1: 2.20x -> NOT met",
        "target genotype_train <= 2.2x lstm_train: 2.00x -> met",
        "target ONNX Runtime scoring faster than Keras: met",
        "target darts1 peak memory <= 4.0 GB: 4.50 GB -> NOT met",
    ]

    # A memory-only figure (``--cases darts1_memory``) is judged without a table row.
    only = bench.report({"darts1": {"peak_rss_gb": 1.9, "peak_rss_own_process": True}})
    assert only[1:] == ["target darts1 peak memory <= 4.0 GB: 1.90 GB -> met"]


def test_bayes_hessian_flops_count_the_matmuls_of_the_recursive_pass(bench):
    units, vocab, steps = 12, 50, 4
    settings = ModelConfig(emsize=units, nhid=units)
    model = supernet(vocab, BayesCell(steps, **cell_arguments(settings, 0)), settings, 0)
    cell = model.cell
    w0 = cell.W0.shape[0] * cell.W0.shape[1]
    nodes = sum(i * cell.Ws.shape[1] * cell.Ws.shape[2] for i in range(1, steps + 1))
    decoder = model.embedding.embeddings.shape[0] * model.embedding.embeddings.shape[1]
    # Forward pass, the trace's second pass over the cell, R0's two [V, U] products, and R4's three [U, U]
    # products per edge (the scalar table's rows) and for node 0's recurrence.
    r4 = (cell.bayes_w.shape[0] + 1) * 3 * cell.Ws.shape[1] ** 2
    macs = (w0 + nodes + decoder) + (w0 + nodes) + 2 * decoder + r4
    assert bench.bayes_hessian_flops(units, vocab, steps) == 2 * macs


def test_epd_and_its_lstm_baseline_flop_counts_match_their_weights(bench):
    space = DagSpace(3)
    tokens = NaoTokens(space)
    embed, hidden, mlp = 8, 16, (10,)
    epd = EncoderPredictorDecoder(tokens.masks, embed=embed, hidden=hidden, mlp=mlp, decoder_hidden=hidden, seed=0)
    epd.build(None)
    t = tokens.length
    per_position = sum(int(np.prod(w.shape)) for w in (epd.enc_kernel, epd.dec_kernel, epd.att_h, epd.att_s,
                                                        epd.out_kernel))
    # Each decoder position scores (att_v) and sums (a hidden-size context) every encoder state.
    attention = t * t * (int(np.prod(epd.att_v.shape)) + hidden)
    predictor = sum(int(np.prod(w.shape)) for w in epd.mlp_kernels)
    macs_per_string = t * per_position + attention + predictor
    assert bench.epd_forward_flops(embed, hidden, mlp, tokens.vocab_size, t) == pytest.approx(
        2 * macs_per_string / t, rel=1e-12)

    baseline = bench.nao_baseline_model(tokens.vocab_size, embed, hidden)
    kernels = sum(int(np.prod(w.shape)) for w in baseline.weights if len(w.shape) == 2
                  and "embedding" not in w.path)
    assert bench.lstm_forward_flops(hidden, tokens.vocab_size, embed) == 2 * kernels


def test_report_judges_the_bayes_hessian_and_the_nao_training_targets(bench):
    def case(seconds, **extra):
        return {"s_per_step": seconds, "tokens_per_s": 100 / seconds, "gflops": 1.0, "peak_rss_gb": 1.0, **extra}

    nao = {"cells": 1000, "epochs": 100, "epochs_projected_s": 120.0}
    results = {"bayes_step": case(10.0), "bayes_hessian": case(21.0), "lstm_nao": case(0.5),
               "nao_epd": case(1.2, **nao)}
    lines = bench.report(results)
    row = {line.split()[0]: line.split()[-1] for line in lines[1:5]}
    assert row == {"bayes_step": "1.00x", "bayes_hessian": "2.10x", "lstm_nao": "1.00x", "nao_epd": "2.40x"}
    verdicts = [line for line in lines if line.startswith("target")]
    assert verdicts == [
        "target bayes_hessian <= 2.0x bayes_step: 2.10x -> NOT met",
        "target nao_epd 100 epochs on 1000 cells <= 180 s: 120 s (projected: the median epoch x epochs) -> met",
    ]
    # A measured fit of all the epochs is judged instead of the projection.
    results["nao_epd"]["epochs_measured_s"] = 200.0
    assert bench.report(results)[-1] == ("target nao_epd 100 epochs on 1000 cells <= 180 s: 200 s (measured in one "
                                         "fit; 120 s projected) -> NOT met")


def test_table_prints_the_latest_run_of_the_cases_asked_for(bench, tmp_path):
    def write(name, cases=None):
        data = {"results": {}, "settings": {}, "machine": {}}
        if cases is not None:
            data["cases"] = cases
        (tmp_path / name).write_text(json.dumps(data), encoding="utf-8")

    write("bench-full-20260101T000000Z.json")                  # before the `cases` field: the default cases
    write("bench-full-20260102T000000Z.json", "bayesnas,nao")
    write("bench-quick-20260103T000000Z.json", "bayesnas,nao")
    write("bench-quick-20260104T000000Z.json", "nao")
    assert bench.latest_run(tmp_path, bench.DEFAULT_CASES).name == "bench-full-20260101T000000Z.json"
    assert bench.latest_run(tmp_path, "bayesnas,nao").name == "bench-full-20260102T000000Z.json"
    assert bench.latest_run(tmp_path, "nao").name == "bench-quick-20260104T000000Z.json"
    assert bench.latest_run(tmp_path, "search") is None


def test_report_judges_the_layer_group_against_its_lstm_and_the_trainers_step(bench):
    def case(seconds):
        return {"s_per_step": seconds, "tokens_per_s": 100 / seconds, "gflops": 1.0, "peak_rss_gb": 1.0}

    results = {"lstm_layer_850": case(2.0), "fused_layer_850": case(3.3), "rnn_layer_850": case(12.0),
               "genotype_layer_850": case(3.0), "lstm_layer_128": case(0.1), "fused_layer_128": case(0.2),
               "genotype_layer_128": case(0.25), "lstm_layer_850_xla": case(1.5), "fused_layer_850_xla": case(2.7)}
    lines = bench.report(results)
    row = {line.split()[0]: line.split()[-1] for line in lines[1:] if not line.startswith(("target", "ratio"))}
    assert row == {"lstm_layer_850": "1.00x", "fused_layer_850": "1.65x", "rnn_layer_850": "6.00x",
                   "genotype_layer_850": "1.50x", "lstm_layer_128": "1.00x", "fused_layer_128": "2.00x",
                   "genotype_layer_128": "2.50x", "lstm_layer_850_xla": "1.00x", "fused_layer_850_xla": "1.80x"}
    assert "target fused_layer_850 <= 1.1x genotype_layer_850: 1.10x -> met" in lines
    assert "target fused_layer_850 <= 1.7x lstm_layer_850: 1.65x -> met" in lines
    assert "target fused_layer_850_xla <= 1.7x lstm_layer_850_xla: 1.80x -> NOT met" in lines   # XLA's own LSTM
    assert "ratio fused_layer_128 / genotype_layer_128 (the Trainer's step): 0.80x" in lines


@pytest.mark.parametrize("machine, says", [({"cpus": 2, "cpus_allowed": 1}, "1 of 2 CPUs"),
                                           ({"cpus": 2, "cpus_allowed": 2}, "2 CPUs"),
                                           ({"cpus": 2}, "2 CPUs")])   # a run from before cpus_allowed
def test_the_table_says_how_many_cpus_the_run_could_use(bench, tmp_path, machine, says):
    path = tmp_path / "bench-full-20260101T000000Z.json"
    path.write_text(json.dumps({"results": {}, "settings": {}, "machine": {"tensorflow": "2.21.0",
                                                                          "machine": "x86_64", **machine}}))
    assert bench.markdown_table(path).startswith(f"Run `{path.name}` (TensorFlow 2.21.0, {says}, x86_64; ")
    assert bench.machine_info()["cpus_allowed"] == len(os.sched_getaffinity(0))
