"""The user example: a Keras functional classifier around the DARTS V2 cell, saved and loaded as .keras."""
import importlib.util
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "keras_classifier_with_darts_v2.py"


def test_darts_v2_classifier_learns_and_round_trips(tmp_path):
    spec = importlib.util.spec_from_file_location("keras_classifier_with_darts_v2", EXAMPLE)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    report = example.run(tmp_path / "clf.keras")
    assert report["reload_max_abs_diff"] == 0.0
    assert report["accuracy"] > 0.8  # chance is 0.5
    model = example.build_classifier()
    assert model.get_layer("darts_v2_rnn").cell.genotype.steps == 8
