"""The search language models hand on their cell's `SearchCell` members (and the attention mixture's)."""
import numpy as np

from tfnas.genotypes.dag import Genotype
from tfnas.genotypes.files import resolve_genotype
from tfnas.lm.search_models import MixedLM, SharedLM

SMALL = {"emsize": 4, "nhid": 4, "seed": 0}


def test_mixed_lm_derives_the_cell_genotype_with_the_attention_choice():
    lm = MixedLM(12, steps=8, search_attention=True, **SMALL)
    lm.build_weights()
    darts_v2 = resolve_genotype("darts_v2")
    lm.cell.set_one_hot(darts_v2)
    lm.attention.alpha.assign(np.float32([0.0, 0.0, 0.0, 3.0, 0.0]))
    assert lm.attention.candidates[3] == "additive"
    assert lm.derive() == darts_v2.with_attention("additive")
    assert [v.name for v in lm.arch_variables] == ["alpha_cell", "alpha_attention"]
    assert sorted(map(id, lm.arch_variables + lm.weight_variables)) == sorted(map(id, lm.trainable_variables))


def test_shared_lm_derives_the_genotype_it_was_set_to():
    lm = SharedLM(12, steps=3, **SMALL)
    lm.build_weights()
    genotype = Genotype((("relu", 0), ("tanh", 0), ("identity", 1)), first_node="enas",
                        first_activation="relu", output="loose_ends")
    lm.set_genotype(genotype)
    assert lm.derive() == genotype == lm.cell.derive()
    assert lm.arch_variables == []
    assert sorted(v.name for v in lm.weight_variables) == ["W0", "Ws", "decoder_bias", "embeddings"]
