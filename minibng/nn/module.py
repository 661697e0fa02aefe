"""Module and Parameter: the tree of layers, its parameters, modes, state and device.

A Module maps an input to an output in ``forward`` and caches what its ``backward`` needs (in training mode);
``backward(dy)`` receives ∂L/∂y, accumulates ∂L/∂θ into each parameter's ``.grad`` and returns ∂L/∂x.
Parameters, buffers and child modules are registered by assignment, in definition order, so
``named_parameters()`` never depends on hashing.

Every ``backward`` needs a training-mode ``forward`` before it: calling it before any forward, after an
evaluation-mode forward, or (for a module with parameters) a second time after one forward, which would add every
gradient into ``.grad`` twice, raises :class:`BackwardOrderError` (see :mod:`minibng.nn.calls`).  Gradients add up
over forward/backward pairs until ``zero_grad()``.

Errors (ValueError, TypeError) raised while a model runs are re-raised by the outermost module with the dotted
path of the layer that raised them, e.g. ``in layer '2' (Linear) during forward: ...``.
"""
from __future__ import annotations

import copy
from collections import OrderedDict

from .. import backend
from .calls import BackwardOrderError, annotated
from .checks import check_dtype, check_flag
from .parameter import Parameter

__all__ = ["Module", "Parameter", "BackwardOrderError"]


def _checked_entry(name, value, target):
    """``value`` as an array of ``target``'s dtype on its device, or a ValueError/TypeError naming the entry."""
    if not backend.is_array(value):
        raise TypeError(f"state_dict entry '{name}': expected a NumPy or CuPy array, got {type(value).__name__} "
                        "(load the arrays that state_dict() or a checkpoint gives)")
    if tuple(value.shape) != tuple(target.shape):
        raise ValueError(f"state_dict entry '{name}': expected shape {tuple(target.shape)}, got {tuple(value.shape)}")
    accepted = "fiu" if target.dtype.kind == "f" else "iu"
    if value.dtype.kind not in accepted:
        raise TypeError(f"state_dict entry '{name}': expected numbers for a {target.dtype} array, "
                        f"got dtype {value.dtype}")
    xp = backend.get_array_module(target)
    converted = xp.array(backend.asnumpy(value), dtype=target.dtype)
    if converted.dtype.kind == "f" and not bool(xp.isfinite(converted).all()):
        raise ValueError(f"state_dict entry '{name}' holds NaN or infinite values (or values too large for "
                         f"{target.dtype}); it cannot come from a healthy run")
    return converted


class Module:
    """Base class of every layer and container (see the module docstring)."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for phase in ("forward", "backward"):
            method = cls.__dict__.get(phase)
            if method is not None and not getattr(method, "_minibng_annotated", False):
                setattr(cls, phase, annotated(method, phase))

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    # -- registration ---------------------------------------------------------------------------------------
    def __setattr__(self, name, value):
        if name in self._cached:  # an activation kept for backward: the hot path
            return object.__setattr__(self, name, value)
        if "_parameters" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}.__init__ must call super().__init__() before assigning {name}")
        if isinstance(value, Parameter):
            self._unregister(name)
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._unregister(name)
            self._modules[name] = value
        elif name in self._parameters or name in self._modules:
            self._unregister(name)  # a parameter or child replaced by a plain value stops being one
        elif name in self._buffers and not backend.is_array(value):
            self._unregister(name)  # a buffer stays a buffer when given a new array, and stops being one otherwise
        object.__setattr__(self, name, value)

    def _unregister(self, name):
        """Forget ``name`` as a parameter, child module or buffer (the attribute itself is left alone)."""
        for registry in (self._parameters, self._modules, self._buffers):
            registry.pop(name, None)

    def register_buffer(self, name, array):
        """A non-trainable array saved in ``state_dict`` and moved by ``to`` (e.g. BatchNorm's running mean)."""
        self.__setattr__(name, array)
        self._buffers[name] = True

    # -- running --------------------------------------------------------------------------------------------
    def forward(self, *inputs):
        raise NotImplementedError(f"{type(self).__name__} does not implement forward")

    def backward(self, dy):
        raise NotImplementedError(f"{type(self).__name__} does not implement backward")

    def __call__(self, *inputs, **kwargs):
        return self.forward(*inputs, **kwargs)

    def check_input(self, x, ndim=None, features=None, axis=-1, dtype=None):
        """Raise a clear error unless ``x`` is a floating array on this module's device with the given rank, size and
        dtype (the layer's: a float64 input to a float32 layer is an error, never a silent upcast)."""
        if not backend.is_array(x):
            raise TypeError(f"expected a NumPy or CuPy array, got {type(x).__name__}")
        first = next(iter(self._parameters.values()), None)
        if first is not None and type(first.data) is not type(x):
            backend.get_array_module(x, first.data)   # a TypeError naming which is NumPy and which CuPy
        if x.dtype.kind != "f":
            raise TypeError(f"expected a floating-point input, got dtype {x.dtype}")
        if x.ndim == 0:   # NumPy turns 0-d results into scalars, which are not arrays
            raise ValueError("expected input of rank 1 or more, got shape ()")
        if dtype is not None and x.dtype != dtype:
            raise TypeError(f"expected {dtype} input (the layer's dtype), got {x.dtype}")
        ranks = ndim if isinstance(ndim, tuple) else (ndim,)
        if ndim is not None and x.ndim not in ranks:
            raise ValueError(f"expected input of rank {' or '.join(map(str, ranks))}, got shape {tuple(x.shape)}")
        if features is not None and (x.ndim < (axis + 1 if axis >= 0 else -axis) or x.shape[axis] != features):
            raise ValueError(f"expected {features} features on axis {axis}, got shape {tuple(x.shape)}")

    # -- traversal ------------------------------------------------------------------------------------------
    def named_modules(self, prefix=""):
        """(dotted name, module) for this module and all descendants, depth first, in definition order."""
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self):
        return [m for _, m in self.named_modules()]

    def children(self):
        return list(self._modules.values())

    def named_parameters(self, prefix=""):
        """(dotted name, Parameter) in definition order; a parameter shared by two modules is listed once."""
        seen = []
        for module_name, module in self.named_modules(prefix):
            for name, p in module._parameters.items():
                if not any(p is q for q in seen):
                    seen.append(p)
                    yield (f"{module_name}.{name}" if module_name else name), p

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    def named_buffers(self):
        for module_name, module in self.named_modules():
            for name in module._buffers:
                yield (f"{module_name}.{name}" if module_name else name), getattr(module, name)

    def zero_grad(self):
        for p in self.parameters():
            p.grad[...] = 0

    # -- modes ----------------------------------------------------------------------------------------------
    def train(self, mode=True):
        mode = check_flag(f"{type(self).__name__}.train", "mode", mode)   # bool("eval") is True
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self):
        return self.train(False)

    # -- state ----------------------------------------------------------------------------------------------
    def state_dict(self):
        """Dotted name -> NumPy copy of every parameter and buffer (host arrays, so it saves with np.savez)."""
        state = OrderedDict((name, backend.asnumpy(p.data).copy()) for name, p in self.named_parameters())
        state.update((name, backend.asnumpy(b).copy()) for name, b in self.named_buffers())
        return state

    def load_state_dict(self, state):
        """Copy values in place, after checking every entry: names match the model's parameters and buffers, and each
        value is an array of the target's shape holding numbers the target's dtype can take (finite ones for floating
        targets).  The first failing entry is named in a ValueError/TypeError and nothing has been written."""
        if not hasattr(state, "keys"):
            raise TypeError(f"state_dict must be a mapping of names to arrays, got {type(state).__name__}")
        targets = OrderedDict((name, p.data) for name, p in self.named_parameters())
        targets.update(self.named_buffers())
        owners = {(f"{path}.{name}" if path else name): (m, name)
                  for path, m in self.named_modules() for name in m._buffers}
        missing = [n for n in targets if n not in state]
        unexpected = [n for n in state if n not in targets]
        if missing or unexpected:
            raise ValueError(f"state_dict does not match the model: missing {missing[:5]}, unexpected {unexpected[:5]}")
        values = OrderedDict((name, _checked_entry(name, state[name], target)) for name, target in targets.items())
        for name, value in values.items():
            if name in owners:
                setattr(*owners[name], value)  # a buffer is rebound, a parameter written in place
            else:
                targets[name][...] = value
        return self

    # -- device and dtype -----------------------------------------------------------------------------------
    def to(self, device):
        """Move every parameter, gradient and buffer to ``device`` ("cpu", "gpu", "gpu:N"); returns self."""
        return self._map_arrays(lambda a: backend.to_device(a, device))

    def astype(self, dtype):
        """Cast every floating parameter, gradient and buffer to ``dtype``, float32 or float64 (gradient checks use
        float64)."""
        dtype = check_dtype(f"{type(self).__name__}.astype", dtype)
        return self._map_arrays(lambda a: a.astype(dtype) if a.dtype.kind == "f" else a)

    def _map_arrays(self, fn):
        for p in self.parameters():
            if p.packed_by is not None:
                raise RuntimeError(
                    "this model's parameters are packed into an optimizer's flat vector; "
                    "move or cast the model before creating the optimizer"
                )
            p._rebind(fn(p.data), fn(p.grad))
        for m in self.modules():
            for name in m._buffers:
                object.__setattr__(m, name, fn(getattr(m, name)))
            m.__dict__["_pass"] = None  # what a forward cached lives on the old device: backward needs a new forward
            m._clear_cache()
        return self

    #: names of the attributes in which a training-mode forward keeps what backward needs
    _cached = ()

    def _clear_cache(self):
        """Forget cached activations (called when arrays move); layers with more to forget override it."""
        for name in self._cached:
            self.__dict__[name] = None

    @property
    def device(self):
        params = self.parameters()
        return backend.device_of(params[0].data) if params else "cpu"

    def copy(self):
        """A deep copy with independent storage (never packed into an optimizer)."""
        memo = {id(p.packed_by): None for p in self.parameters() if p.packed_by is not None}
        clone = copy.deepcopy(self, memo)
        for p in clone.parameters():
            p._rebind(p.data.copy(), p.grad.copy(), packed_by=None)
        return clone

    # -- display --------------------------------------------------------------------------------------------
    def extra_repr(self):
        return ""

    def __repr__(self):
        if not self._modules:
            return f"{type(self).__name__}({self.extra_repr()})"
        lines = [f"{type(self).__name__}("]
        for name, child in self._modules.items():
            lines.append("  (" + name + "): " + repr(child).replace("\n", "\n  "))
        return "\n".join(lines) + "\n)"
