"""An optimizer's state as a flat {str: host array or scalar} dict, keyed by block and parameter names.

Such a dict saves with ``numpy.savez`` and loads with ``numpy.load(..., allow_pickle=False)`` (strings and
numbers become 0-d arrays, which :func:`load_state` accepts).  Loading checks everything before changing
anything: the same optimizer kind, transform, hyperparameters, blocks (name and size), parameters (name and
size) and rule buffers (name and shape), a step count t ≥ 0, a learning rate ≥ 0, finite buffers and
non-negative second moments; the first difference is a ValueError that names the key.

Format 2 (``format``) is the chain of transforms; format 1 (no ``format`` key) differs only for AdaGradBNG,
whose δ was ``hyper.rule.delta`` and is now AdaGrad's ``hyper.rule.eps``: such a state is read as format 2.
"""
from __future__ import annotations

import math

from .. import backend

__all__ = ["save_state", "load_state", "FORMAT"]

FORMAT = 2
NON_NEGATIVE_BUFFERS = ("sum", "square_avg", "exp_avg_sq")   # Σ d², averages of d²: never below 0


def _normalize_name(opt):
    return "none" if opt.normalizer is None else opt.normalizer.name


def save_state(opt):
    flat = opt.flat
    state = {"format": FORMAT, "optimizer": type(opt).__name__, "normalize": _normalize_name(opt),
             "step": int(opt.step_count), "lr": float(opt.lr), "base_lr": float(opt.base_lr)}
    state.update((f"hyper.{k}", v) for k, v in opt.hyperparameters().items())
    state.update((f"block.{name}.size", int(size)) for name, size in opt.blocks)
    for name, start, stop, shape in flat.param_slices():
        state[f"param.{name}.size"] = stop - start
        for buffer_name, buffer in opt.rule.state.items():
            state[f"state.{name}.{buffer_name}"] = backend.asnumpy(buffer[start:stop]).reshape(shape).copy()
    return state


def _plain(value):
    """A Python scalar or str from a 0-d array (as numpy.load returns them) or from itself."""
    return value.item() if getattr(value, "ndim", None) == 0 else value


def _mismatch(message):
    return ValueError(f"optimizer state_dict does not match: {message}")


def _check_names(kind, ours, saved_keys, prefix, suffix):
    """Every name of ``ours`` must appear in the saved keys and no other; the error names the first offender."""
    theirs = [k[len(prefix):len(k) - len(suffix)] for k in saved_keys if k.startswith(prefix) and k.endswith(suffix)]
    for name in ours:
        if name not in theirs:
            raise _mismatch(f"this optimizer has {kind} '{name}', the state has no such {kind}")
    for name in theirs:
        if name not in ours:
            raise _mismatch(f"the state has {kind} '{name}', this optimizer has no such {kind}")


def _number(state, key, minimum=0):
    """state[key] as a finite float ≥ ``minimum``, or a ValueError naming the key."""
    value = _plain(state[key])
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < minimum:
        raise ValueError(f"optimizer state_dict: '{key}' must be a finite number ≥ {minimum}, got {value!r}")
    return value


def load_state(opt, state):
    """Check ``state`` against ``opt`` (see the module docstring), then write it; nothing changes on an error."""
    state = dict(state)
    if "format" not in state and "hyper.rule.delta" in state:
        state["hyper.rule.eps"] = state.pop("hyper.rule.delta")
    for key in ("optimizer", "normalize", "step", "lr", "base_lr"):
        if key not in state:
            raise ValueError(f"optimizer state_dict is missing '{key}'")
    saved_format = int(_plain(state.pop("format", 1)))
    if saved_format > FORMAT:
        raise ValueError(f"optimizer state_dict has format {saved_format}, newer than this minibng's {FORMAT}; "
                         "upgrade minibng to load it")
    if str(_plain(state["optimizer"])) != type(opt).__name__:
        raise _mismatch(f"it is for {_plain(state['optimizer'])}, not {type(opt).__name__}")
    if str(_plain(state["normalize"])) != _normalize_name(opt):
        raise _mismatch(f"it has normalize '{_plain(state['normalize'])}', this optimizer has '{_normalize_name(opt)}'")
    step, lr, base_lr = _number(state, "step"), _number(state, "lr"), _number(state, "base_lr")
    if int(step) != step:
        raise ValueError(f"optimizer state_dict: 'step' must be a whole number of steps, got {step!r}")
    hyper = opt.hyperparameters()
    _check_names("hyperparameter", list(hyper), state, "hyper.", "")
    for name, value in hyper.items():
        if float(_plain(state[f"hyper.{name}"])) != value:
            raise _mismatch(f"hyperparameter '{name}' = {_plain(state[f'hyper.{name}'])}, this optimizer has {value}")
    _check_names("block", opt.flat.partition.names, state, "block.", ".size")
    for name, size in opt.blocks:
        if int(_plain(state[f"block.{name}.size"])) != size:
            raise _mismatch(f"block '{name}' has size {_plain(state[f'block.{name}.size'])}, here {size}")
    slices = list(opt.flat.param_slices())
    _check_names("parameter", opt.flat.param_names, state, "param.", ".size")
    _check_names("buffer", [f"{name}.{b}" for name, *_ in slices for b in opt.rule.state], state, "state.", "")
    xp = opt.flat.partition.xp
    for name, start, stop, shape in slices:
        if int(_plain(state[f"param.{name}.size"])) != stop - start:
            raise _mismatch(f"parameter '{name}' has size {_plain(state[f'param.{name}.size'])}, here {stop - start}")
        for b in opt.rule.state:
            value = state[f"state.{name}.{b}"]
            if tuple(getattr(value, "shape", ())) != shape or getattr(value, "dtype", None) is None \
                    or value.dtype.kind != "f":
                raise _mismatch(f"buffer '{name}.{b}' must be a float array of shape {shape}, got "
                                f"{type(value).__name__} {getattr(value, 'dtype', '')} {tuple(getattr(value, 'shape', ()))}")
            values = backend.asnumpy(value)
            if not bool(backend.get_array_module(values).isfinite(values).all()):
                raise ValueError(f"optimizer state_dict: buffer '{name}.{b}' holds NaN or infinite values")
            if b in NON_NEGATIVE_BUFFERS and bool((values < 0).any()):
                raise ValueError(f"optimizer state_dict: buffer '{name}.{b}' (a sum or average of squares) holds "
                                 "negative values")
    for name, start, stop, shape in slices:
        for b, buffer in opt.rule.state.items():
            buffer[start:stop] = xp.asarray(state[f"state.{name}.{b}"], dtype=buffer.dtype).reshape(-1)
    opt.step_count, opt.lr, opt.base_lr = int(step), lr, base_lr
