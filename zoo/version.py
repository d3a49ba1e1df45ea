"""The zoo's version, in a module of its own so that every other module can read it without importing the package."""

__version__ = "0.3.0"
