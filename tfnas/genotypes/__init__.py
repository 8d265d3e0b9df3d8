"""Genotypes: DAG and tree cells as immutable, versioned JSON data (no TensorFlow)."""
from tfnas.genotypes.base import ATTENTIONS, GenotypeError
from tfnas.genotypes.dag import ACTIVATIONS, FIRST_NODES, OUTPUT_RULES, Genotype, token_vocab_size
from tfnas.genotypes.files import (AnyGenotype, as_any_genotype, as_genotype_of, genotype_from_dict, known_cells, load_genotype,
                                   resolve_genotype)
from tfnas.genotypes.tree import TreeGenotype

__all__ = ["ACTIVATIONS", "ATTENTIONS", "AnyGenotype", "FIRST_NODES", "Genotype", "GenotypeError", "OUTPUT_RULES",
           "TreeGenotype", "as_any_genotype", "as_genotype_of", "genotype_from_dict", "known_cells", "load_genotype",
           "resolve_genotype", "token_vocab_size"]
