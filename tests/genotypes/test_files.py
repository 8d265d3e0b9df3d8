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
    assert enas.concat == (2, 5, 6, 9, 10, 11)  # the loose ends, as in the DARTS repository
    assert load_genotype(exported_cells / "darts_v1.json").nodes[5] == ("identity", 1)


def test_load_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(GenotypeError, match="bad.json.*not valid JSON"):
        load_genotype(bad)
    with pytest.raises(FileNotFoundError, match="missing.json"):
        load_genotype(tmp_path / "missing.json")
    bad.write_text(json.dumps({"nodes": [["relu", 3]]}))
    with pytest.raises(GenotypeError, match="node 1 can only read nodes 0..0"):
        load_genotype(bad)
