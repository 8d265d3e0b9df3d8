"""tfnas' version, the one place it is written: ``tfnas.__version__`` imports it and setup.py reads this file
without importing tfnas."""
__version__ = "0.1.0"
