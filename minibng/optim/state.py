"""An optimizer's state as a flat {str: host array or scalar} dict, keyed by link, block and parameter names.

Such a dict saves with ``numpy.savez`` and loads with ``numpy.load(..., allow_pickle=False)`` (strings and
numbers become 0-d arrays, which :func:`load_state` accepts).  Loading checks everything before changing
anything: the same optimizer kind and chain (its :meth:`~.chain.Chain.signature`), hyperparameters, blocks (name
and size), parameters (name and size) and rule buffers (name and shape), a whole step count 0 ≤ t < 2⁶³ (a
checkpoint stores it as int64), a learning rate ≥ 0, non-negative second moments, and numbers wherever numbers
belong (text, None or an array there is refused, never read by int() or float()).  Values are checked in the dtype
they will be stored in, the parameters' dtype: a buffer entry or a learning rate beyond its range (1e39 for
float32) is refused, never loaded as ∞.  The first difference is a ValueError that names the key.

Format 3 (``format``) names the chain's links.  Older states load too:

- format 2 described the chain by the optimizer's class, its ``normalize`` transform and its weight decay
  (``hyper.weight_decay``, ``hyper.decay_before``), with the hyperparameters under ``hyper.rule.*`` and
  ``hyper.normalize.*``; :func:`_from_format_2` names the chain those built;
- format 1 (no ``format`` key) differs from format 2 only for AdaGradBNG, whose δ was ``hyper.rule.delta`` and is
  AdaGrad's ``hyper.rule.eps``.
"""
from __future__ import annotations

import math
import numbers

from .. import backend

__all__ = ["save_state", "load_state", "FORMAT"]

FORMAT = 3
NON_NEGATIVE_BUFFERS = ("sum", "square_avg", "exp_avg_sq")   # Σ d², averages of d²: never below 0
_LARGEST_STEP = 2**63 - 1
KINDS = {"hyper": "hyperparameter", "block": "block", "param": "parameter", "state": "buffer"}
REQUIRED = ("optimizer", "chain", "step", "lr", "base_lr")
# format 2's normalizers that read the block norms (the measurement then belongs to the chain's signature)
FORMAT_2_READING_NORMS = ("block", "adaptive", "clip", "lars")


def save_state(opt):
    state = {"format": FORMAT, "optimizer": type(opt).__name__, "chain": opt.chain.signature(),
             "step": int(opt.step_count), "lr": float(opt.lr), "base_lr": float(opt.base_lr)}
    state.update((f"hyper.{k}", v) for k, v in opt.chain.hyperparameter_values().items())
    state.update((f"block.{name}.size", int(size)) for name, size in opt.blocks)
    for name, start, stop, shape in opt.flat.param_slices():
        state[f"param.{name}.size"] = stop - start
        for buffer, values in opt.rule.state.items():
            state[f"state.{name}.{buffer}"] = backend.asnumpy(values[start:stop]).reshape(shape).copy()
    return state


def _unwrap_0d(value):
    """A Python scalar or str from a 0-d array (as numpy.load returns them) or from itself."""
    return value.item() if getattr(value, "ndim", None) == 0 else value


def _describe(key):
    """'block.0.size' → "block '0'" (the kind of entry and its name, as messages say it)."""
    kind, _, name = key.partition(".")
    return f"{KINDS[kind]} '{name.removesuffix('.size')}'"


def _scalar(key, value):
    """``value`` (a number, or a 0-d array as numpy.load returns one) as a Python number, else a ValueError naming
    the key: text, None and arrays are not numbers (a bool is: format 2 saved its flags so)."""
    value = _unwrap_0d(value)
    if not isinstance(value, numbers.Real):
        raise ValueError(f"optimizer state_dict: '{key}' must be a number, got {value!r}")
    return value


def _is_whole(value):
    return not isinstance(value, bool) and (isinstance(value, numbers.Integral) or float(value).is_integer())


def _whole(key, value):
    """``value`` as an int (a size, a format number), else a ValueError naming the key."""
    value = _scalar(key, value)
    if not _is_whole(value):
        raise ValueError(f"optimizer state_dict: '{key}' must be a whole number, got {value!r}")
    return int(value)


def _non_negative(key, value):
    """``value`` as a finite number ≥ 0, else a ValueError naming the key."""
    value = _scalar(key, value)
    if isinstance(value, bool) or value < 0 or (isinstance(value, float) and not math.isfinite(value)):
        raise ValueError(f"optimizer state_dict: '{key}' must be a finite number ≥ 0, got {value!r}")
    return value


def _step_count(state):
    """t: a whole number ≥ 0 that fits the int64 in which a checkpoint stores it."""
    step = _non_negative("step", state["step"])
    if not _is_whole(step):
        raise ValueError(f"optimizer state_dict: 'step' must be a whole number of steps, got {step!r}")
    if step > _LARGEST_STEP:
        raise ValueError(f"optimizer state_dict: 'step' = {step!r} exceeds {_LARGEST_STEP}, the largest step count "
                         "a checkpoint stores (int64)")
    return int(step)


def _rate(state, key, dtype):
    """A learning rate ≥ 0 that stays finite in ``dtype``, the parameters' dtype, whose arrays it multiplies."""
    rate = _non_negative(key, state[key])
    largest = float(backend.host_module().finfo(dtype).max)
    if rate > largest:
        raise ValueError(f"optimizer state_dict: '{key}' = {rate!r} is beyond the range of {dtype} (largest "
                         f"{largest:.3g}), the parameters' dtype, in which it would step as ∞")
    return float(rate)


def _from_format_2(state, rule_name):
    """A format-2 (or format-1) state in format 3, for an optimizer of the same class whose rule is ``rule_name``.

    The chain format 2 built: [weight decay before] [the measurement] [normalizer] [weight decay after] rule
    [AdaGradBNG's ‖g^i‖ scale] [trust ratio], the measurement listed where a normalizer reads it."""
    state = dict(state)
    if "format" not in state and "hyper.rule.delta" in state:   # format 1
        state["hyper.rule.eps"] = state.pop("hyper.rule.delta")
    state.pop("format", None)
    normalize = str(_unwrap_0d(state.pop("normalize", "none")))
    decay = float(_scalar("hyper.weight_decay", state.pop("hyper.weight_decay", 0.0)))
    decay_before = bool(_scalar("hyper.decay_before", state.pop("hyper.decay_before", 0.0)))
    direction = ["norms", normalize] if normalize in FORMAT_2_READING_NORMS else []
    if decay:
        direction = ["weight_decay", *direction] if decay_before else [*direction, "weight_decay"]
        state["hyper.weight_decay.weight_decay"] = decay
    update = ["gradient_norm_scale"] if str(_unwrap_0d(state["optimizer"])) == "AdaGradBNG" else []
    update += ["trust_ratio"] if normalize == "trust_ratio" else []
    state["chain"] = ",".join([*direction, rule_name, *update])
    for key in [k for k in state if k.startswith(("hyper.rule.", "hyper.normalize."))]:
        role, _, hyperparameter = key.removeprefix("hyper.").partition(".")
        state[f"hyper.{rule_name if role == 'rule' else normalize}.{hyperparameter}"] = state.pop(key)
    return state


def _current(opt, state):
    """``state`` in the current format, after the checks that do not depend on it (its format, its optimizer)."""
    state = dict(state)
    version = _whole("format", state.get("format", 1))
    if version > FORMAT:
        raise ValueError(f"optimizer state_dict has a format newer than this minibng's {FORMAT}; upgrade minibng")
    if "optimizer" not in state:
        raise ValueError("optimizer state_dict is missing 'optimizer'")
    if str(_unwrap_0d(state["optimizer"])) != type(opt).__name__:
        raise ValueError(f"optimizer state_dict does not match: it is for {_unwrap_0d(state['optimizer'])}, not "
                         f"{type(opt).__name__}")
    if version < 3:
        state = _from_format_2(state, opt.rule.name)
    state.pop("format", None)
    for key in REQUIRED:
        if key not in state:
            raise ValueError(f"optimizer state_dict is missing '{key}'")
    return state


def _expected_entries(opt):
    """What a state for ``opt`` holds under the KINDS prefixes: hyperparameter values, block and parameter sizes,
    and the shape of every buffer."""
    slices = list(opt.flat.param_slices())
    expected = {f"hyper.{k}": v for k, v in opt.chain.hyperparameter_values().items()}
    expected.update((f"block.{name}.size", size) for name, size in opt.blocks)
    expected.update((f"param.{name}.size", stop - start) for name, start, stop, _ in slices)
    expected.update((f"state.{name}.{b}", shape) for name, _, _, shape in slices for b in opt.rule.state)
    return expected


def _check_entry(key, value, expected, mismatch, dtype):
    """A ValueError unless the saved ``value`` of ``key`` is what this optimizer ``expected`` (_expected_entries);
    a buffer comes back as a host array of ``dtype``, the parameters' dtype, in which it is checked."""
    if key.startswith("hyper.") and float(_scalar(key, value)) != expected:
        raise ValueError(mismatch + f"hyperparameter '{key.removeprefix('hyper.')}' = {_unwrap_0d(value)}, this "
                         f"optimizer has {expected}")
    if key.endswith(".size") and _whole(key, value) != expected:
        raise ValueError(mismatch + f"{_describe(key)} has size {_unwrap_0d(value)}, here {expected}")
    if key.startswith("state."):
        return _checked_buffer(key, value, expected, mismatch, dtype)
    return value


def _checked_buffer(key, value, shape, mismatch, dtype):
    """The saved buffer ``value`` as a host array of ``dtype``, after checking its shape, that it holds floats, that
    they are finite before and after the conversion to ``dtype``, and that a second moment is not negative."""
    if tuple(getattr(value, "shape", ())) != shape or getattr(getattr(value, "dtype", None), "kind", "") != "f":
        raise ValueError(mismatch + f"{_describe(key)} must be a float array of shape {shape}")
    host = backend.host_module()
    saved = backend.asnumpy(value)
    with host.errstate(over="ignore"):
        stored = host.asarray(saved, dtype=dtype)
    if not bool(host.isfinite(saved).all()):
        raise ValueError(f"optimizer state_dict: {_describe(key)} holds NaN or infinite values")
    if not bool(host.isfinite(stored).all()):
        raise ValueError(f"optimizer state_dict: {_describe(key)} holds {float(host.abs(saved).max()):.3g}, beyond the "
                         f"range of {dtype} (largest {float(host.finfo(dtype).max):.3g}), the parameters' dtype in "
                         "which it is stored")
    if key.rsplit(".", 1)[1] in NON_NEGATIVE_BUFFERS and bool((stored < 0).any()):
        raise ValueError(f"optimizer state_dict: {_describe(key)} (a sum or average of squares) holds "
                         "negative values")
    return stored


def load_state(opt, state):
    """Check ``state`` against ``opt`` (see the module docstring), then write it; nothing changes on an error."""
    state = _current(opt, state)
    mismatch = "optimizer state_dict does not match: "
    if str(_unwrap_0d(state["chain"])) != opt.chain.signature():
        raise ValueError(mismatch + f"it holds the chain '{_unwrap_0d(state['chain'])}', this optimizer "
                         f"'{opt.chain.signature()}'")
    expected = _expected_entries(opt)
    saved = [key for key in state if key.partition(".")[0] in KINDS]
    for key in expected:
        if key not in state:
            raise ValueError(mismatch + f"this optimizer has {_describe(key)}, the state has no such "
                             f"{KINDS[key.partition('.')[0]]}")
    for key in saved:
        if key not in expected:
            raise ValueError(mismatch + f"the state has {_describe(key)}, this optimizer has no such "
                             f"{KINDS[key.partition('.')[0]]}")
    dtype = opt.flat.partition.dtype
    checked = {key: _check_entry(key, state[key], value, mismatch, dtype) for key, value in expected.items()}
    step, lr, base_lr = _step_count(state), _rate(state, "lr", dtype), _rate(state, "base_lr", dtype)
    xp = opt.flat.partition.xp
    for name, start, stop, _ in opt.flat.param_slices():
        for b, buffer in opt.rule.state.items():
            buffer[start:stop] = xp.asarray(checked[f"state.{name}.{b}"]).reshape(-1)
    opt.step_count = step
    opt.lr = lr
    opt.base_lr = base_lr
