"""Installs tfnas and its console command ``tfnas``.

The presets (``configs/``) and the known genotypes (``exported_cells/``)
live at the top of the repository and are installed inside the package, as
``tfnas/configs`` and ``tfnas/exported_cells`` (see `tfnas.resources`).
Setuptools ships data files by package, so every folder under them,
sub-folders included, is declared a data-only package.
"""
import runpy

from setuptools import find_namespace_packages, find_packages, setup

#: Repository folder -> the file pattern shipped from it and from each of its sub-folders.
DATA_FOLDERS = {"configs": "*.yaml", "exported_cells": "*.json"}
DATA_PACKAGES = {f"tfnas.{package}": [pattern] for folder, pattern in DATA_FOLDERS.items()
                 for package in find_namespace_packages(include=[folder, f"{folder}.*"])}

setup(
    name="tfnas",
    version=runpy.run_path("tfnas/_version.py")["__version__"],  # not `import tfnas`: it needs the requirements
    description=(
        "Neural architecture search for recurrent cells and attention heads of "
        "word-level language models, in TensorFlow 2 / Keras 3."
    ),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    author="The tfnas Authors",
    license_expression="Apache-2.0",
    license_files=["LICENSE"],
    # No Project-URL yet: tfnas has no public home (repository or hosted docs), and a Project-URL must be an
    # absolute URL. The docs are the repository's docs/ (`mkdocs build` or `mkdocs serve`).
    python_requires=">=3.10",
    packages=find_packages(include=["tfnas", "tfnas.*"]) + sorted(DATA_PACKAGES),
    package_dir={f"tfnas.{folder}": folder for folder in DATA_FOLDERS},
    package_data=DATA_PACKAGES,
    install_requires=[
        "tensorflow>=2.16",
        "keras>=3.3",
        "tensorflow-datasets>=4.9",
        "numpy>=1.26",
        "scipy>=1.15",  # tfnas.compare.statistics: bootstrap and permutation tests seeded with `rng=` (SciPy 1.15)
        "onnx>=1.15",
        "tf2onnx>=1.16",
        "onnxruntime>=1.17",
        "graphviz>=0.20",
        "pyyaml>=6.0",
        "tensorboard>=2.16",
        "werkzeug>=3.0",  # tfnas serve's WSGI app (also what TensorBoard's server runs on)
        "waitress>=3.0",  # tfnas serve's WSGI server: timeouts, connection and body limits, a bounded thread pool
        "filelock>=4.3.2",  # the run folder's lock (tfnas.runs.lock), a download's work folder (tfnas.data.download)
        "tqdm>=4.70.1",  # the progress bar on a terminal (tfnas.progress)
    ],
    extras_require={
        # setuptools: tests/test_resources.py builds the wheel without build isolation, with the environment's own
        # setuptools, which must write core metadata 2.4 (PEP 639's License-Expression: setuptools 77)
        "dev": ["pytest>=7.4", "hypothesis>=6.90", "ray>=2.9", "matplotlib>=3.7", "setuptools>=77"],
        "ray": ["ray>=2.9"],
        "compare": ["matplotlib>=3.7"],
        # The frozen cells and heads on the other Keras backends (docs/guides/backends.md). A bare
        # `torch>=2.1` resolves to PyPI's CUDA build; for the CPU build install it first from PyTorch's
        # CPU index (.ci/run installs `torch==2.13.0+cpu` before this extra).
        "torch": ["torch>=2.1"],
        "jax": ["jax>=0.4.23"],
        "backends": ["torch>=2.1", "jax>=0.4.23"],
        # The documentation site (mkdocs.yml, docs/): `mkdocs build --strict`, as .ci/run runs it.
        "docs": ["mkdocs>=1.6", "mkdocs-material>=9.5", "mkdocstrings[python]>=0.26"],
    },
    entry_points={"console_scripts": ["tfnas=tfnas.cli:main"]},
)
