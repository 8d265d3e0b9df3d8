"""`shared_weights_model`: the shared-weights model of a search folder's model.json, in today's and the old form."""
import numpy as np
import pytest

from tfnas.cells.search import MixedCell, SharedCell
from tfnas.config import ModelConfig
from tfnas.evaluation.evaluators import shared_weights_model
from tfnas.lm import cell_arguments, supernet

#: The model.json of an ENAS search written before the search models were composed (``SharedLM.get_config()``
#: as tfnas wrote it then, emsize/nhid 6 and seed 3).
LEGACY_SHARED_LM = {
    "name": "shared_lm", "trainable": True,
    "dtype": {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}, "registered_name": None},
    "vocab_size": 20, "seed": 3, "emsize": 6, "nhid": 6, "nlayers": 1, "dropout": 0.75, "dropouth": 0.25,
    "dropoutx": 0.75, "dropouti": 0.2, "dropoute": 0.1, "tie_weights": True, "cell_init_range": 0.05,
    "emb_init_range": 0.04, "attention": None, "recompute": False, "steps": 3, "first_node": "enas",
    "output": "loose_ends"}


def test_an_old_shared_lm_config_loads_as_the_same_supernet():
    settings = ModelConfig(emsize=6, nhid=6, cell_init_range=0.05)
    today = supernet(20, SharedCell(3, name="shared_cell", **cell_arguments(settings, 3)), settings, 3)
    old = shared_weights_model(LEGACY_SHARED_LM)
    old.build_weights()
    assert isinstance(old.cell, SharedCell) and (old.cell.steps, old.cell.first_node, old.cell.output_rule) == (
        3, "enas", "loose_ends")
    assert [v.path.split("/", 1)[1] for v in old.trainable_variables] == [
        v.path.split("/", 1)[1] for v in today.trainable_variables]
    for mine, theirs in zip(today.variables, old.variables):  # seeded alike: the checkpoints' arrays fit
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
    again = shared_weights_model(today.get_config())
    assert isinstance(again.cell, SharedCell) and again.cell.steps == 3


def test_a_model_json_of_another_supernet_is_refused():
    settings = ModelConfig(emsize=4, nhid=4)
    mixed = supernet(10, MixedCell(2, **cell_arguments(settings, 0)), settings, 0)
    with pytest.raises(TypeError, match="its cell is a MixedCell, not a SharedCell"):
        shared_weights_model(mixed.get_config())
