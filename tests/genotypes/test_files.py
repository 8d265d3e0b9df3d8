"""Reading genotype files: the known cells as published, and errors that name the file."""
import json
import re

import pytest

from tfnas.genotypes.base import GenotypeError
from tfnas.genotypes.files import load_genotype, resolve_genotype


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


def test_integers_too_long_for_python_are_refused_naming_the_file(tmp_path):
    """Issue 26 item 22: a predecessor (or tree index) of over 4,300 digits, the most Python converts, gets the
    reader's one-line error naming the file and where the number is, not Python's int-conversion message; the same
    number as a string is shown cut short."""
    path = tmp_path / "long.json"
    path.write_text('{"nodes": [["relu", 0],\n ["tanh", ' + "9" * 4301 + "]]}")
    with pytest.raises(GenotypeError, match=r"^\S*long.json: genotype JSON holds an integer of 4301 digits \(line 2, "
                                            r"column 11\); Python reads at most 4300$"):
        load_genotype(path)
    tree = {"space": "tree", "nodes": [["add", "tanh"]] * 3, "inject": ["add", "tanh"], "cell_node": 0}
    path.write_text(json.dumps(tree)[:-1] + ', "inject_node": -' + "1" * 5000 + "}")
    with pytest.raises(GenotypeError, match=r"long.json: genotype JSON holds an integer of 5000 digits \(line 1, "):
        load_genotype(path)
    path.write_text(json.dumps({"nodes": [["relu", "9" * 5000]]}))
    with pytest.raises(GenotypeError) as caught:
        load_genotype(path)
    assert re.fullmatch(r"\S*long.json: genotype field 'nodes\[0\].predecessor': must be an integer "
                        r"\(got '9{20,60}\.\.\.9+'\)", str(caught.value))


@pytest.mark.parametrize("version, got", [("true", "True"), ("1.0", "1.0"), ('"1"', "'1'")])
def test_a_version_that_is_not_the_integer_1_is_refused(tmp_path, version, got):
    """Issue 26 item 22: ``"version": true`` (an int in Python, equal to 1) and ``1.0`` are not version 1."""
    path = tmp_path / "v.json"
    path.write_text('{"version": ' + version + ', "nodes": [["relu", 0]]}')
    with pytest.raises(GenotypeError, match=rf"^\S*v.json: genotype field 'version': this tfnas reads version 1 "
                                            rf"\(got {re.escape(got)}\)$"):
        load_genotype(path)
    tree = {"version": json.loads(version), "space": "tree", "nodes": [["add", "tanh"]] * 3,
            "inject": ["add", "tanh"], "inject_node": 0, "cell_node": 0}
    path.write_text(json.dumps(tree))
    with pytest.raises(GenotypeError, match=rf"v.json: genotype field 'version': .* \(got {re.escape(got)}\)$"):
        load_genotype(path)


def test_a_folder_is_read_by_its_genotype_json(tmp_path, exported_cells):
    """A run or search folder stands for the cell it trained or found (``genotype.json``); a folder without one
    is refused on one line that points to ``tfnas results`` (not Python's ``Is a directory``)."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "genotype.json").write_text((exported_cells / "enas.json").read_text(), encoding="utf-8")
    assert resolve_genotype(run) == load_genotype(exported_cells / "enas.json")
    with pytest.raises(GenotypeError) as err:
        resolve_genotype(tmp_path)
    assert str(err.value) == (f"{tmp_path} is a folder without genotype.json: give a genotype JSON file or a known "
                              f"cell's name (a run, search or comparison folder's results: tfnas results {tmp_path})")
