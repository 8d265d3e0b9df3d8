"""Real data (slow; run with ``pytest -m slow``): a tiny PTB model, exported to every format,
scores the PTB test set with the trainer's perplexity within 0.1%."""
import json

import pytest

from tfnas.cli import main
from tfnas.export import FORMATS

pytestmark = pytest.mark.slow


def test_ptb_score_of_each_export_matches_trainer(shared_data, tmp_path, capsys):
    run = tmp_path / "runs" / "exp"
    assert main(["train", "--genotype", "darts_v2", "--dataset", "ptb", "--data-dir", str(shared_data),
                 "--emsize", "32", "--nhid", "32", "--max-steps", "20", "--test-batch-size", "10",
                 "--eval-batch-size", "10", "--out", str(run), "--quiet"]) == 0
    test_ppl = json.loads((run / "result.json").read_text())["test_ppl"]
    out = tmp_path / "exports"
    assert main(["export", str(run), "--format", "all", "--out", str(out)]) == 0
    capsys.readouterr()
    for fmt in FORMATS:
        assert main(["score", "--model", str(out / fmt), "--text", str(shared_data / "ptb" / "test.txt")]) == 0
        line = capsys.readouterr().out.strip().splitlines()[-1]
        ppl = float(line.split()[1])
        assert "82420 tokens | batch size 10 | bptt 35" in line
        assert abs(ppl / test_ppl - 1) < 1e-3, (fmt, ppl, test_ppl)
