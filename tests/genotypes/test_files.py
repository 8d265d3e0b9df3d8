"""Reading genotype files: the known cells as published, and errors that name the file."""
import json

import pytest

from tfnas.genotypes.base import GenotypeError
from tfnas.genotypes.files import load_genotype


def test_known_cells(exported_cells):
    v2 = load_genotype(exported_cells / "darts_v2.json")
    assert v2.nodes == (("sigmoid", 0), ("relu", 1), ("relu", 1), ("identity", 1), ("tanh", 2),
                        ("sigmoid", 5), ("tanh", 3), ("relu", 5))
    assert v2.concat == tuple(range(1, 9))
    assert v2.provenance["reported"]["test_ppl"] == 55.7
    enas = load_genotype(exported_cells / "enas.json")
    # every node as in the DARTS repository's rnn/genotypes.py (ENAS, DARTS_V1)
    assert enas.nodes == (("tanh", 0), ("tanh", 1), ("relu", 1), ("tanh", 3), ("tanh", 3), ("relu", 3),
                          ("relu", 4), ("relu", 7), ("relu", 8), ("relu", 8), ("relu", 8))
    assert enas.concat == (2, 5, 6, 9, 10, 11)  # the loose ends
    assert enas.provenance["reported"]["darts_recipe"]["test_ppl"] == 58.6  # DARTS Table 2
    v1 = load_genotype(exported_cells / "darts_v1.json")
    assert v1.nodes == (("relu", 0), ("relu", 1), ("tanh", 2), ("relu", 3), ("relu", 4), ("identity", 1),
                        ("relu", 5), ("relu", 1))
    assert v1.concat == tuple(range(1, 9))
    # the June-2018 release cell: no first-order search and no perplexity are attributed to it
    assert "first order" not in v1.provenance["search"]
    assert "test_ppl" not in v1.provenance["reported"]


def test_load_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(GenotypeError, match="bad.json.*not valid JSON"):
        load_genotype(bad)
    with pytest.raises(FileNotFoundError, match="missing.json"):
        load_genotype(tmp_path / "missing.json")
    bad.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(GenotypeError, match=r"^\S*bad.json: genotype is not valid JSON: nested too deeply$"):
        load_genotype(bad)
    bad.write_text(json.dumps({"nodes": [["relu", 3]]}))
    with pytest.raises(GenotypeError, match="node 1 can only read nodes 0..0"):
        load_genotype(bad)
