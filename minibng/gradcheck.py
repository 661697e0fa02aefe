"""The name the layer check had before the audit package: ``minibng.gradcheck.check`` is
:func:`minibng.audit.check_layer` (see :mod:`minibng.audit.layer`)."""
from .audit.layer import GradcheckError, GradcheckReport
from .audit.layer import check_layer as check

__all__ = ["check", "GradcheckError", "GradcheckReport"]
