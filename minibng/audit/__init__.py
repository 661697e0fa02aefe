"""The audit kit: what lets a reader check the paper's claims and anyone's code against the math.

- The optimizer audit, :func:`audit_optimizer` (:mod:`~minibng.audit.optimizer_audit`): anyone's optimizer — in
  PyTorch, optax or NumPy — against a minibng preset on the same seeded gradients, extreme scales included; the
  first step, block and stage where they part, and the variant of the catalogue (:mod:`~minibng.audit.variants`) it
  matches.  :func:`audit_self` runs minibng's presets against torch.optim and optax.  :class:`ChainTrace`
  records what every link of an optimizer's chain made, per block and step.
- The layer audit, :func:`check_layer` (:mod:`~minibng.audit.layer`, also ``minibng.gradcheck.check``): a module's
  backward against finite differences, with its worst coordinate, and a forward or backward that touches its inputs.
- Theorem 1: :class:`BoundRecorder` records an AdaGradBNG run and gives the verdict (:mod:`~minibng.audit.recorder`);
  :func:`adagrad_bng_bound` and :func:`average_regret` compute the bound and the regret of any recorded run
  (:mod:`~minibng.audit.bound`, also ``minibng.theory``).
- The command line: ``python -m minibng.audit optimizer | self | layer`` (:mod:`~minibng.audit.cli`).

The audit reads the layers (nn) and the optimizers (optim); nothing in the training run depends on it.  PyTorch,
optax and jax are optional (``pip install -e ".[audit]"``), imported only when a candidate of theirs is audited.
"""
from .bound import TheoremOneBound, adagrad_bng_bound, average_regret, block_sizes_of
from .compare import Tolerance
from .layer import GradcheckError, GradcheckReport, WorstCoordinate, check_layer
from .mirror import CandidateError
from .optimizer_audit import AuditRun, Disagreement, OptimizerAudit, audit_optimizer
from .recorder import BoundRecorder, BoundVerdict
from .self_check import audit_self
from .trace import ChainTrace, TracedStep
from .variants import CATALOGUE, Variant

__all__ = ["audit_optimizer", "OptimizerAudit", "Disagreement", "AuditRun", "Tolerance", "CandidateError",
           "audit_self", "ChainTrace", "TracedStep", "CATALOGUE", "Variant",
           "check_layer", "GradcheckError", "GradcheckReport", "WorstCoordinate",
           "BoundRecorder", "BoundVerdict", "adagrad_bng_bound", "average_regret", "TheoremOneBound",
           "block_sizes_of"]
