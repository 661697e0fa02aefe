"""An optimizer's state as a flat {str: host array or scalar} dict, keyed by block and parameter names.

Such a dict saves with ``numpy.savez`` and loads with ``numpy.load(..., allow_pickle=False)`` (strings and
numbers become 0-d arrays, which :func:`load_state` accepts).  Loading checks, before changing anything, that
the dict describes the same optimizer kind, transform, hyperparameters, blocks (name and size), parameters
(name and size) and rule buffers; the first difference is a ValueError that names it.
"""
from __future__ import annotations

from .. import backend

__all__ = ["save_state", "load_state"]


def save_state(opt):
    packed = opt.packed
    state = {
        "optimizer": type(opt).__name__,
        "normalize": "none" if opt.normalizer is None else opt.normalizer.name,
        "step": int(opt.step_count),
        "lr": float(opt.lr),
        "base_lr": float(opt.base_lr),
    }
    state.update((f"hyper.{k}", v) for k, v in opt.hyperparameters().items())
    state.update((f"block.{name}.size", int(size)) for name, size in zip(packed.names, packed.sizes))
    for name, start, stop, shape in packed.param_slices():
        state[f"param.{name}.size"] = stop - start
        for buffer_name, buffer in opt.rule.state.items():
            state[f"state.{name}.{buffer_name}"] = backend.asnumpy(buffer[start:stop]).reshape(shape).copy()
    return state


def _plain(value):
    """A Python scalar or str from a 0-d array (as numpy.load returns them) or from itself."""
    if getattr(value, "ndim", None) == 0:
        return value.item()
    return value


def _check_names(kind, ours, saved_keys, prefix, suffix):
    """Every name of ``ours`` must appear in the saved keys and no other; the error names the first offender."""
    theirs = [k[len(prefix):len(k) - len(suffix)] for k in saved_keys if k.startswith(prefix) and k.endswith(suffix)]
    for name in ours:
        if name not in theirs:
            raise ValueError(f"optimizer state_dict does not match: this optimizer has {kind} '{name}', "
                             f"the state has no such {kind}")
    for name in theirs:
        if name not in ours:
            raise ValueError(f"optimizer state_dict does not match: the state has {kind} '{name}', "
                             f"this optimizer has no such {kind}")


def load_state(opt, state):
    packed = opt.packed
    for key in ("optimizer", "normalize", "step", "lr", "base_lr"):
        if key not in state:
            raise ValueError(f"optimizer state_dict is missing '{key}'")
    expected_kind = type(opt).__name__
    if str(_plain(state["optimizer"])) != expected_kind:
        raise ValueError(f"optimizer state_dict is for {_plain(state['optimizer'])}, not {expected_kind}")
    expected_normalize = "none" if opt.normalizer is None else opt.normalizer.name
    if str(_plain(state["normalize"])) != expected_normalize:
        raise ValueError(f"optimizer state_dict has normalize '{_plain(state['normalize'])}', "
                         f"this optimizer has '{expected_normalize}'")
    hyper = opt.hyperparameters()
    _check_names("hyperparameter", list(hyper), state.keys(), "hyper.", "")
    for name, value in hyper.items():
        if float(_plain(state[f"hyper.{name}"])) != value:
            raise ValueError(f"optimizer state_dict has hyperparameter '{name}' = {_plain(state[f'hyper.{name}'])}, "
                             f"this optimizer has {value}")
    _check_names("block", packed.names, state.keys(), "block.", ".size")
    for name, size in zip(packed.names, packed.sizes):
        if int(_plain(state[f"block.{name}.size"])) != size:
            raise ValueError(f"optimizer state_dict: block '{name}' has size {_plain(state[f'block.{name}.size'])}, "
                             f"here {size}")
    _check_names("parameter", packed.param_names, state.keys(), "param.", ".size")
    slices = list(packed.param_slices())
    for name, start, stop, shape in slices:
        if int(_plain(state[f"param.{name}.size"])) != stop - start:
            raise ValueError(f"optimizer state_dict: parameter '{name}' has size "
                             f"{_plain(state[f'param.{name}.size'])}, here {stop - start}")
    buffers = [f"{name}.{b}" for name, *_ in slices for b in opt.rule.state]
    _check_names("buffer", buffers, state.keys(), "state.", "")
    for name, start, stop, shape in slices:
        for b in opt.rule.state:
            value = state[f"state.{name}.{b}"]
            if tuple(value.shape) != tuple(shape):
                raise ValueError(f"optimizer state_dict: buffer '{name}.{b}' has shape {tuple(value.shape)}, "
                                 f"expected {tuple(shape)}")
    xp = packed.xp
    for name, start, stop, shape in slices:
        for b, buffer in opt.rule.state.items():
            buffer[start:stop] = xp.asarray(state[f"state.{name}.{b}"], dtype=buffer.dtype).reshape(-1)
    opt.step_count = int(_plain(state["step"]))
    opt.lr = float(_plain(state["lr"]))
    opt.base_lr = float(_plain(state["base_lr"]))
