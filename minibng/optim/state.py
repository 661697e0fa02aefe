"""An optimizer's state as a flat {str: host array or scalar} dict, keyed by block and parameter names.

Such a dict saves with ``numpy.savez`` and loads with ``numpy.load(..., allow_pickle=False)`` (strings and
numbers become 0-d arrays, which :func:`load_state` accepts).  Loading checks everything before changing
anything: the same optimizer kind, transform, hyperparameters, blocks (name and size), parameters (name and
size) and rule buffers (name and shape), a whole step count t ≥ 0, a learning rate ≥ 0, finite buffers and
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
KINDS = {"hyper": "hyperparameter", "block": "block", "param": "parameter", "state": "buffer"}


def _normalize_name(opt):
    return "none" if opt.normalizer is None else opt.normalizer.name


def save_state(opt):
    state = {"format": FORMAT, "optimizer": type(opt).__name__, "normalize": _normalize_name(opt),
             "step": int(opt.step_count), "lr": float(opt.lr), "base_lr": float(opt.base_lr)}
    state.update((f"hyper.{k}", v) for k, v in opt.hyperparameters().items())
    state.update((f"block.{name}.size", int(size)) for name, size in opt.blocks)
    for name, start, stop, shape in opt.flat.param_slices():
        state[f"param.{name}.size"] = stop - start
        for buffer, values in opt.rule.state.items():
            state[f"state.{name}.{buffer}"] = backend.asnumpy(values[start:stop]).reshape(shape).copy()
    return state


def _plain(value):
    """A Python scalar or str from a 0-d array (as numpy.load returns them) or from itself."""
    return value.item() if getattr(value, "ndim", None) == 0 else value


def _describe(key):
    """'block.0.size' → "block '0'" (the kind of entry and its name, as messages say it)."""
    kind, _, name = key.partition(".")
    return f"{KINDS[kind]} '{name[:-len('.size')] if name.endswith('.size') else name}'"


def _number(state, key, whole=False):
    """state[key] as a finite number ≥ 0 (a whole one if ``whole``), or a ValueError naming the key."""
    value = _plain(state[key])
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"optimizer state_dict: '{key}' must be a finite number ≥ 0, got {value!r}")
    if whole and int(value) != value:
        raise ValueError(f"optimizer state_dict: '{key}' must be a whole number of steps, got {value!r}")
    return value


def load_state(opt, state):
    """Check ``state`` against ``opt`` (see the module docstring), then write it; nothing changes on an error."""
    state = dict(state)
    if "format" not in state and "hyper.rule.delta" in state:
        state["hyper.rule.eps"] = state.pop("hyper.rule.delta")
    for key in ("optimizer", "normalize", "step", "lr", "base_lr"):
        if key not in state:
            raise ValueError(f"optimizer state_dict is missing '{key}'")
    if int(_plain(state.pop("format", 1))) > FORMAT:
        raise ValueError(f"optimizer state_dict has a format newer than this minibng's {FORMAT}; upgrade minibng")
    mismatch = "optimizer state_dict does not match: "
    if str(_plain(state["optimizer"])) != type(opt).__name__:
        raise ValueError(mismatch + f"it is for {_plain(state['optimizer'])}, not {type(opt).__name__}")
    if str(_plain(state["normalize"])) != _normalize_name(opt):
        raise ValueError(mismatch + f"it has normalize '{_plain(state['normalize'])}', this optimizer has "
                         f"'{_normalize_name(opt)}'")
    slices = list(opt.flat.param_slices())
    ours = {f"hyper.{k}": v for k, v in opt.hyperparameters().items()}
    ours.update((f"block.{name}.size", size) for name, size in opt.blocks)
    ours.update((f"param.{name}.size", stop - start) for name, start, stop, _ in slices)
    ours.update((f"state.{name}.{b}", shape) for name, _, _, shape in slices for b in opt.rule.state)
    theirs = [key for key in state if key.partition(".")[0] in KINDS]
    for key in [k for k in ours if k not in state] + [k for k in theirs if k not in ours]:
        has, lacks = ("this optimizer", "the state") if key in ours else ("the state", "this optimizer")
        raise ValueError(mismatch + f"{has} has {_describe(key)}, {lacks} has no such {KINDS[key.partition('.')[0]]}")
    for key, expected in ours.items():
        value = state[key]
        if key.startswith("hyper.") and float(_plain(value)) != expected:
            raise ValueError(mismatch + f"hyperparameter '{key[6:]}' = {_plain(value)}, this optimizer has {expected}")
        if key.endswith(".size") and int(_plain(value)) != expected:
            raise ValueError(mismatch + f"{_describe(key)} has size {_plain(value)}, here {expected}")
        if key.startswith("state."):
            if tuple(getattr(value, "shape", ())) != expected or getattr(getattr(value, "dtype", None), "kind", "") != "f":
                raise ValueError(mismatch + f"{_describe(key)} must be a float array of shape {expected}")
            host = backend.asnumpy(value)
            if not bool(backend.get_array_module(host).isfinite(host).all()):
                raise ValueError(f"optimizer state_dict: {_describe(key)} holds NaN or infinite values")
            if key.rsplit(".", 1)[1] in NON_NEGATIVE_BUFFERS and bool((host < 0).any()):
                raise ValueError(f"optimizer state_dict: {_describe(key)} (a sum or average of squares) holds "
                                 "negative values")
    step, lr, base_lr = _number(state, "step", whole=True), _number(state, "lr"), _number(state, "base_lr")
    xp = opt.flat.partition.xp
    for name, start, stop, _ in slices:
        for b, buffer in opt.rule.state.items():
            buffer[start:stop] = xp.asarray(state[f"state.{name}.{b}"], dtype=buffer.dtype).reshape(-1)
    opt.step_count, opt.lr, opt.base_lr = int(step), lr, base_lr
