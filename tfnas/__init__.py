"""tfnas: neural architecture search for recurrent language-model cells in TensorFlow 2 / Keras 3."""
from tfnas.genotypes import Genotype, GenotypeError, TreeGenotype, load_genotype, resolve_genotype

__version__ = "0.1.0"
__all__ = ["Genotype", "GenotypeError", "TreeGenotype", "__version__", "load_genotype", "resolve_genotype"]
