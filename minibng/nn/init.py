"""Weight initializers, drawn from a host NumPy Generator so that a seed gives the same model on CPU and GPU.

``init`` names accepted by the layers:
- ``"torch"`` (default): uniform(±1/√fan_in) for weights and biases — Torch7's and PyTorch's Linear/Conv default;
- ``"he"``: weights N(0, 2/fan_in) (He et al. 2015; fan_in for Linear, fan_out = out·kh·kw for Conv2d as
  fb.resnet.torch), biases 0;
- ``"xavier"``: uniform(±√(6/(fan_in+fan_out))), biases 0;
- a float ``a``: uniform(±a) for weights and biases (Zaremba et al. use 0.1 for their LSTMs).
"""
from __future__ import annotations

import math
import numbers

from .. import backend

__all__ = ["init_weight", "check_init"]


def check_init(layer, init, names=("torch", "he", "xavier")):
    """``init`` if it is one of ``names`` or a positive finite number a (the bound of uniform(±a)), else a
    ValueError naming ``layer`` (an infinite bound would draw NaN weights)."""
    if isinstance(init, str) and init in names:
        return init
    if isinstance(init, numbers.Real) and not isinstance(init, bool) and 0 < init < math.inf:
        return float(init)
    raise ValueError(f"{layer}: init must be {' or '.join(map(repr, names))} or a positive float bound (finite: "
                     f"uniform(±a)), got {init!r}")


def init_weight(shape, fan_in, fan_out, init, rng, dtype, bias=False):
    """A host array of ``shape`` drawn by the ``init`` rule (see the module docstring); ``bias=True`` for a bias,
    which "he" and "xavier" set to 0."""
    rng = backend.host_rng(rng)
    if init == "torch":
        w = rng.uniform(-1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in), shape)
    elif init in ("he", "xavier") and bias:
        return backend.host_module().zeros(shape, dtype=dtype)
    elif init == "he":
        w = rng.normal(0.0, math.sqrt(2.0 / fan_in), shape)
    elif init == "xavier":
        bound = math.sqrt(6.0 / (fan_in + fan_out))
        w = rng.uniform(-bound, bound, shape)
    else:
        w = rng.uniform(-init, init, shape)
    return w.astype(dtype)
