"""Parameter: a trainable array ``data``, its gradient ``grad``, and how both may be written.

Write values in place: ``p.data[...] = v`` to set weights, ``p.grad += g`` in a backward (gradients accumulate
until ``zero_grad()``).  An optimizer packs every parameter into one flat vector (:mod:`minibng.optim.flat`):
``data`` and ``grad`` then are views into its arrays x and g.  Rebinding such a view (``p.grad = g``) would leave
the optimizer reading storage the layer no longer writes, and the model would silently stop moving; so while a
parameter is packed, assigning to ``p.data`` or ``p.grad`` copies the values into the existing storage, exactly as
``p.data[...] = v`` does.  An unpacked parameter's arrays are rebound by assignment (``Module.to`` and ``astype``
rely on it).  Either way the new array must have the parameter's shape.  Only the owner of the flat vector
re-points the views, with :meth:`Parameter._rebind`.

``p.grad = g`` *replaces* the gradient; a backward that does so (or ``p.grad[...] = g``) loses what an earlier
backward accumulated.  :func:`minibng.audit.check_layer` runs backward twice and catches it.
"""
from __future__ import annotations

from .. import backend

__all__ = ["Parameter"]

_KEEP = object()


class Parameter:
    """A trainable array ``data`` and its gradient ``grad`` (same shape and dtype); see the module docstring."""

    def __init__(self, data):
        if not backend.is_array(data):
            raise TypeError(f"Parameter data must be a NumPy or CuPy array, got {type(data).__name__}")
        self.packed_by = None  # the optimizer's Flat that owns the storage, if any
        self._rebind(data, backend.get_array_module(data).zeros_like(data))

    @property
    def data(self):
        """The values (an array); assigning writes into it while packed (see the module docstring)."""
        return self._data

    @data.setter
    def data(self, value):
        self._assign("data", value)

    @property
    def grad(self):
        """The accumulated gradient ∂L/∂θ (an array of ``data``'s shape); assigning writes into it while packed."""
        return self._grad

    @grad.setter
    def grad(self, value):
        self._assign("grad", value)

    def _rebind(self, data, grad, packed_by=_KEEP):
        """Point ``data`` and ``grad`` at these arrays (and record ``packed_by``, the Flat owning them, or None).

        For the optimizer's packing and release, and for moving or casting a module; everyone else writes in place.
        """
        for name, value in (("data", data), ("grad", grad)):
            if not backend.is_array(value):
                raise TypeError(f"Parameter.{name} must be a NumPy or CuPy array, got {type(value).__name__}")
        if tuple(grad.shape) != tuple(data.shape):
            raise ValueError(f"Parameter: grad has shape {tuple(grad.shape)}, data {tuple(data.shape)}; "
                             "they must agree")
        self._data, self._grad = data, grad
        if packed_by is not _KEEP:
            self.packed_by = packed_by

    def _assign(self, name, value):
        current = self._data if name == "data" else self._grad
        if value is current:  # ``p.grad += g`` updated the array in place and assigns it back
            return
        if not backend.is_array(value):
            raise TypeError(f"Parameter.{name} must be a NumPy or CuPy array, got {type(value).__name__}; "
                            f"write values in place, p.{name}[...] = v")
        if tuple(value.shape) != tuple(current.shape):
            raise ValueError(f"Parameter.{name}: got an array of shape {tuple(value.shape)}, the parameter has shape "
                             f"{tuple(current.shape)}; a parameter keeps its shape (build a new layer for another)")
        if self.packed_by is None:
            setattr(self, "_" + name, value)
            return
        if backend.array_library_name(value) != backend.array_library_name(current):
            raise TypeError(f"Parameter.{name}: got a {backend.array_library_name(value)} array, the parameter "
                            f"lives in a {backend.array_library_name(current)} array on {backend.device_of(current)}; "
                            "move the value there first")
        current[...] = value  # packed: keep the optimizer's view, copy the values into it

    @property
    def shape(self):
        return self._data.shape

    @property
    def dtype(self):
        return self._data.dtype

    @property
    def size(self):
        return self._data.size

    def __repr__(self):
        return (f"Parameter(shape={tuple(self._data.shape)}, dtype={self._data.dtype}, "
                f"device={backend.device_of(self._data)})")
