"""The name Theorem 1's bound had before the audit package: ``minibng.theory`` re-exports
:mod:`minibng.audit.bound`."""
from .audit.bound import TheoremOneBound, adagrad_bng_bound, average_regret, block_sizes_of

__all__ = ["TheoremOneBound", "adagrad_bng_bound", "average_regret", "block_sizes_of"]
