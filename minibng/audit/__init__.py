"""The audit kit: what lets a reader check the paper's claims and a user's own code against the math.

- :mod:`~minibng.audit.layer`: finite-difference checking of any module's backward, :func:`check_layer`
  (also reached by its earlier name, ``minibng.gradcheck.check``).
- :mod:`~minibng.audit.bound`: Theorem 1's two bounds for a recorded run of AdaGradBNG,
  :func:`adagrad_bng_bound`, against the realized :func:`average_regret` (also ``minibng.theory``).

The audit reads the layers (nn) and the optimizers' partition into blocks (optim); nothing in the training run
depends on it.
"""
from .bound import TheoremOneBound, adagrad_bng_bound, average_regret, block_sizes_of
from .layer import GradcheckError, GradcheckReport, check_layer

__all__ = ["check_layer", "GradcheckError", "GradcheckReport", "adagrad_bng_bound", "average_regret",
           "TheoremOneBound", "block_sizes_of"]
