"""Parameter counts of the language models against the counts the papers publish.

Vocabularies: PTB 10,000 words (Mikolov et al. 2010), WikiText-2 33,278 (Merity et al. 2017). The papers
round to millions, so a count must be within 2% of the published figure (NASABN's 18M: see below).
"""
import numpy as np
import pytest

from tfnas.config import ModelConfig
from tfnas.genotypes.dag import Genotype
from tfnas.genotypes.files import load_genotype
from tfnas.lm.model import LanguageModel
from tfnas.strategies.one_shot.darts import NasabnConfig
from tfnas.strategies.one_shot.wenet import WenetConfig

PTB_VOCAB, WT2_VOCAB = 10_000, 33_278


def count(genotype, vocab, units, attention=None):
    model = LanguageModel.from_config_objects(vocab, genotype, ModelConfig(emsize=units, nhid=units,
                                                                           attention=attention))
    return sum(int(np.prod(v.shape)) for v in model.trainable_variables)


def chain(steps, first_node="darts"):
    """A cell of ``steps`` nodes (the count depends on the number of nodes, not on their choices)."""
    return Genotype(nodes=tuple(("tanh", i) for i in range(steps)), first_node=first_node)


@pytest.mark.parametrize("vocab, units, published", [
    (PTB_VOCAB, 850, 23e6),   # DARTS Table 2 (23M); the DARTS README: 22.96M
    (WT2_VOCAB, 700, 33e6),   # DARTS Table 3 (33M)
])
def test_darts_v2(exported_cells, vocab, units, published):
    n = count(load_genotype(exported_cells / "darts_v2.json"), vocab, units)
    assert abs(n - published) / published < 0.02
    if vocab == PTB_VOCAB:
        assert n == 22_960_000  # 10000 x 850 + 1700 x 1700 + 8 x 850 x 1700 + 10000


def test_nasabn_cell_and_dot_head():
    """NASABN Table I: 18M with its cell (NasabnConfig's steps) and the parameter-free dot head at 850 units.

    The paper rounds to millions: 5 steps give 18.6M (4 give 17.2M, 6 give 20.1M), so among all cell sizes
    the default must be the one nearest 18M, and within 3.5%.
    """
    config = NasabnConfig()
    assert config.model.attention == "dot" and not config.search_attention
    n = count(chain(config.steps), PTB_VOCAB, 850, config.model.attention)
    assert abs(n - 18e6) / 18e6 < 0.035
    others = [abs(count(chain(s), PTB_VOCAB, 850, "dot") - 18e6) for s in (4, 6)]
    assert abs(n - 18e6) < min(others)


@pytest.mark.parametrize("vocab, units, published", [
    (PTB_VOCAB, 850, 23e6),   # WeNet Table 1 (23M), evaluated with the DARTS setup
    (WT2_VOCAB, 700, 33e6),   # WeNet Table 2 (33M)
])
def test_wenet_cell(vocab, units, published):
    config = WenetConfig()
    n = count(chain(config.steps, config.first_node), vocab, units)
    assert abs(n - published) / published < 0.02
