"""envbuild: an incremental, declarative builder of reproducible conda + PyPI environments."""

__version__ = "0.1.0"
