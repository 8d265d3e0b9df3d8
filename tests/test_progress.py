"""`tfnas.progress`: a bar on a terminal, plain lines elsewhere, nothing when quiet; scoring and export use it."""
from __future__ import annotations

import io
import sys
from types import SimpleNamespace

import numpy as np

from tfnas.export import export_run, score_file
from tfnas.progress import Progress


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


class UniformLM:
    """Stands in for an `ExportedModel`: every word of a 4-word vocabulary has probability 1/4."""

    vocab = ("<eos>", "a", "b", "c")
    metadata = SimpleNamespace(test_batch_size=2, bptt=3, tokens="words")

    def encode(self, tokens):
        return np.array([self.vocab.index(t) for t in tokens], np.int64)

    def initial_state(self, batch):
        return []

    def log_probs(self, inputs, targets, states):
        return np.full(targets.shape, -np.log(4.0)), states


def test_plain_lines_with_counts_when_not_a_terminal() -> None:
    out = io.StringIO()
    with Progress("work", 3, unit="items", stream=out, interval=0) as bar:
        for _ in range(3):
            bar.advance()
    lines = out.getvalue().splitlines()
    assert lines[:3] == ["work: 1/3 items (33%)", "work: 2/3 items (67%)", "work: 3/3 items (100%)"]
    assert lines[3].startswith("work: 3/3 items (100%) in ") and len(lines) == 4 and "\r" not in out.getvalue()


def test_plain_lines_are_occasional_but_a_new_stage_and_the_end_always_show() -> None:
    out = io.StringIO()
    with Progress("export", 2, unit="formats", stream=out) as bar:  # default interval: 10 s between lines
        for k in range(1000):
            bar.update(0)
        with bar.stage("keras"):
            pass
        with bar.stage("onnx"):
            bar.describe("onnx: saving")
    assert out.getvalue().splitlines()[:4] == ["export: 0/2 formats (0%)", "export: 0/2 formats (0%) | keras",
                                               "export: 1/2 formats (50%) | onnx",
                                               "export: 1/2 formats (50%) | onnx: saving"]
    assert out.getvalue().splitlines()[-1].startswith("export: 2/2 formats (100%) in ")


def test_a_terminal_gets_a_bar_redrawn_in_place() -> None:
    out = Terminal()
    with Progress("downloading x.zip", 2_000_000, unit="B", stream=out, interval=0, width=10) as bar:
        bar.advance(500_000)
        bar.advance(1_500_000)
    text = out.getvalue()
    assert text.startswith("\rdownloading x.zip [==>       ] 0.5/2.0 MB (25%)")
    assert "\rdownloading x.zip [==========] 2.0/2.0 MB (100%)" in text
    assert text.count("\r") == 3 and text.endswith(" s\n") and text.count("\n") == 1


def test_quiet_writes_nothing(capsys) -> None:
    out = Terminal()
    with Progress("work", 2, stream=out, quiet=True) as bar:
        bar.advance(2)
    with Progress.to(False, "work", 2) as bar:
        bar.advance(2)
    assert out.getvalue() == "" and capsys.readouterr() == ("", "")
    assert Progress.to(True, "work").stream is sys.stderr


def test_scoring_a_file_reports_windows_up_to_the_total(tmp_path) -> None:
    path = tmp_path / "text.txt"
    path.write_text("a b c a b\n" * 20, encoding="utf-8")
    out = io.StringIO()
    result = score_file(UniformLM(), path, progress=out)
    lines = out.getvalue().splitlines()
    assert result.windows == 20 and np.isclose(result.perplexity, 4.0)  # 120 tokens in 2 rows of 60, 59 / 3
    assert lines[0] == "scoring: 1/20 windows (5%)"
    assert lines[-1].startswith("scoring: 20/20 windows (100%) in ")
    out = io.StringIO()
    assert score_file(UniformLM(), path, max_batches=7, progress=out).windows == 7
    assert out.getvalue().splitlines()[-1].startswith("scoring: 7/7 windows (100%)")


def test_export_shows_each_format_and_onnx_stage(runs, tmp_path) -> None:
    out = io.StringIO()
    export_run(runs.loaded("lstm"), tmp_path / "exports", formats="keras,onnx", progress=out)
    notes = [line.split(" | ")[1] for line in out.getvalue().splitlines() if " | " in line]
    assert notes == ["keras", "onnx", "onnx: converting with tf2onnx", "onnx: parity check in onnxruntime",
                     "onnx: saving"]
    assert out.getvalue().splitlines()[-1].startswith("export: 2/2 formats (100%) in ")


def test_a_terminal_shows_braces_in_the_label_and_the_note_as_written() -> None:
    out = Terminal()
    with Progress("scoring {a}.txt", 4, stream=out, interval=0, width=2) as bar:
        bar.advance(1, note="{0} and }{")
    assert out.getvalue().startswith("\rscoring {a}.txt [> ] 1/4 (25%) | {0} and }{\rscoring {a}.txt [> ] 1/4 "
                                     "(25%) in ")
