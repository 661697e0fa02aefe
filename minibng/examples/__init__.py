"""The paper's experiments, each runnable as ``python -m minibng.examples.<name> --help``."""
