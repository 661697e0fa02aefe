"""``python -m minibng.audit``: the audit kit's command line.

    python -m minibng.audit optimizer REF --against FILE.py:FACTORY --framework torch|optax|numpy
           [--dtype float64|float32] [--steps N] [--scales 1,1e-30,1e30,0] [--set NAME=VALUE ...] [--seed S]
           [--every-block] [--json OUT]
    python -m minibng.audit self [--dtype …] [--steps N] [--scales …] [--seed S] [--json OUT]
    python -m minibng.audit layer FILE.py:FACTORY --input-shape 8,5 [--input-shape 8:10 …] [--tolerance T]
           [--seed S] [--json OUT]

Exit status: 0 when everything agrees (the layer passes), 1 when something parts (fails), 2 for a usage error —
a bad FILE:FACTORY, an unknown REF or framework, a bad value, ``self`` with neither PyTorch nor optax installed (no
comparison is no agreement) — printed as one line, without a traceback, before any work.  Every argument is parsed
and judged first; ``--json OUT`` is written at the end.  An error raised while the runs are made (but a candidate
that cannot be audited as given) is no usage error: it ends the command with its traceback.
"""
from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path

import numpy as np

from .. import nn, optim
from .layer import GradcheckError, LayerArgumentError, check_layer
from .loading import load_factory
from .mirror import FRAMEWORKS, CandidateError, mirror_for
from .optimizer_audit import DEFAULT_SCALES, DTYPES, check_audit_options, prepare_audit
from .self_check import PAIRS, audit_self, format_self, unavailable_frameworks

__all__ = ["main"]

PROGRAM = "python -m minibng.audit"


class UsageError(Exception):
    """A bad argument: one line on stderr, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def _scales(text):
    try:
        values = tuple(float(item) for item in text.split(","))
    except ValueError:
        raise UsageError(f"--scales: expected numbers separated by commas, such as 1,1e-30,1e30,0; got {text!r}")
    return values


def _setting(text):
    name, sep, value = text.partition("=")
    if not sep or not name.isidentifier():
        raise UsageError(f"--set: expected NAME=VALUE (a keyword of optim.create, e.g. lr=0.01), got {text!r}")
    try:
        return name, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return name, value      # a word: blocks=tensor, decay=before


def _input(text):
    """'8,5' → floats of shape (8, 5); '8:10' → integers in [0, 10) of shape (8,)."""
    shape_text, _, high = text.partition(":")
    try:
        shape = tuple(int(n) for n in shape_text.split(","))
        high = int(high) if high else None
    except ValueError:
        raise UsageError(f"--input-shape: expected sizes such as 8,5 (or 8:10 for integers in [0, 10)), got {text!r}")
    if any(n < 1 for n in shape) or (high is not None and high < 1):
        raise UsageError(f"--input-shape: sizes (and the integers' bound) must be >= 1, got {text!r}")
    return shape, high


def _json_path(text):
    path = Path(text)
    if path.is_dir() or not path.parent.is_dir():
        raise UsageError(f"--json: {text} must be a file in an existing folder")
    return path


def _parser():
    parser = _Parser(prog=PROGRAM, description="Audit an optimizer, minibng's presets, or a layer against the math.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    common = _Parser(add_help=False)
    common.add_argument("--json", type=_json_path, help="write the report as JSON to this file")
    common.add_argument("--seed", type=int, default=0, help="seed of the model, gradients and inputs (default 0)")
    runs = _Parser(add_help=False)
    runs.add_argument("--dtype", choices=DTYPES, default="float64",
                      help="the parameters' and gradients' type, which sets the tolerance (default float64)")
    runs.add_argument("--steps", type=int, default=5, help="optimizer steps per run (default 5)")
    runs.add_argument("--scales", type=_scales, default=DEFAULT_SCALES,
                      help="the first block's gradients are multiplied by each, one run each (default 1,1e-30,1e30,0)")
    audit = commands.add_parser("optimizer", parents=[common, runs], help="audit an optimizer against a preset")
    audit.add_argument("reference", metavar="REF", help=f"an optim.create name: {', '.join(optim.preset_names())}")
    audit.add_argument("--against", required=True, metavar="FILE.py:FACTORY",
                       help="the candidate: FACTORY in FILE.py builds it (docs/audit.md says what it is given)")
    audit.add_argument("--framework", required=True, choices=FRAMEWORKS, help="what the candidate is written in")
    audit.add_argument("--set", dest="settings", type=_setting, action="append", default=[], metavar="NAME=VALUE",
                       help="a hyperparameter given to both, such as lr=0.01 (repeat for several)")
    audit.add_argument("--every-block", action="store_true", help="one more run per block, its gradients scaled")
    commands.add_parser("self", parents=[common, runs], help="minibng's presets against torch.optim and optax")
    layer = commands.add_parser("layer", parents=[common], help="check a layer's backward against finite differences")
    layer.add_argument("factory", metavar="FILE.py:FACTORY", help="FACTORY() in FILE.py returns the minibng module")
    layer.add_argument("--input-shape", dest="inputs", type=_input, action="append", required=True,
                       metavar="SHAPE[:HIGH]", help="one input: 8,5 for normal floats, 8:10 for integers in [0, 10); "
                       "repeat for a module of several inputs")
    layer.add_argument("--tolerance", type=float, default=1e-6,
                       help="largest relative error a tensor's gradient may have (default 1e-6)")
    return parser


def _first_line(error):
    return str(error).splitlines()[0]


def _write_json(path, payload):
    if path is not None:
        path.write_text(json.dumps(payload, indent=2, allow_nan=False, ensure_ascii=False) + "\n", encoding="utf-8")


def _optimizer(args):
    settings = dict(args.settings)
    if len(settings) != len(args.settings):
        raise UsageError("--set: each NAME may be given once")
    try:
        check_audit_options(args.reference, args.framework, args.dtype, args.steps, args.scales, args.seed)
        missing = mirror_for(args.framework).available()
        if missing:
            raise UsageError(missing)
        factory = load_factory(args.against)
        audit = prepare_audit(args.reference, factory, args.framework, dtype=args.dtype, steps=args.steps,
                              scales=args.scales, seed=args.seed, every_block=args.every_block, label=args.against,
                              **settings)
    except (ValueError, TypeError, ImportError) as error:
        raise UsageError(_first_line(error)) from None
    try:
        report = audit.run()
    except CandidateError as error:
        raise UsageError(_first_line(error)) from None
    print(report)
    _write_json(args.json, _json_safe(report.as_json()))
    return 0 if report.agrees else 1


def _self(args):
    try:
        check_audit_options("sgd", "numpy", args.dtype, args.steps, args.scales, args.seed)
    except ValueError as error:
        raise UsageError(str(error)) from None
    missing = unavailable_frameworks()
    if len(missing) == len({pair.framework for pair in PAIRS}):   # nothing to compare: no verdict, not "agrees"
        raise UsageError("audit self compares minibng with PyTorch and optax, and neither is installed: "
                         + "; ".join(missing.values()))
    results, skipped = audit_self(args.dtype, args.steps, args.scales, args.seed)
    print(format_self(results, skipped, args.dtype, args.steps, args.scales))
    _write_json(args.json, _json_safe({"agrees": all(a.agrees for _, a in results if a is not None),
                                       "skipped": skipped,
                                       "pairs": [{"framework": p.framework, "optimizer": p.label,
                                                  "reference": p.reference, "settings": p.settings,
                                                  "audit": None if a is None else a.as_json()} for p, a in results]}))
    return 0 if all(a.agrees for _, a in results if a is not None) else 1


def _layer(args):
    if not (np.isfinite(args.tolerance) and args.tolerance > 0):
        raise UsageError(f"--tolerance: expected a positive finite number (such as 1e-6), got {args.tolerance}")
    try:
        factory = load_factory(args.factory)
    except ValueError as error:
        raise UsageError(str(error)) from None
    try:
        module = factory()
    except Exception as error:
        raise UsageError(f"{args.factory}: FACTORY() raised {type(error).__name__}: {error}") from None
    if not isinstance(module, nn.Module):
        raise UsageError(f"{args.factory}: FACTORY() returned {type(module).__name__}, not a minibng nn.Module")
    rng = np.random.default_rng(args.seed)
    dtype = next((p.data.dtype for p in module.parameters()), np.float64)   # the layer's own: it checks its input's
    inputs = [rng.standard_normal(shape).astype(dtype) if high is None else rng.integers(0, high, shape)
              for shape, high in args.inputs]
    try:
        module(*[x.copy() for x in inputs])
    except Exception as error:
        raise UsageError(f"{args.factory}: the module refused inputs of shape "
                         f"{', '.join(str(x.shape) for x in inputs)}: {type(error).__name__}: {error}") from None
    try:
        report = check_layer(module, *inputs, tolerance=args.tolerance, seed=args.seed, raise_on_failure=False)
    except GradcheckError as error:
        print(f"FAIL: {error}")
        _write_json(args.json, {"ok": False, "error": str(error)})
        return 1
    except LayerArgumentError as error:   # a ValueError of the layer's own code is no usage error: it propagates
        raise UsageError(str(error)) from None
    print(report)
    _write_json(args.json, _json_safe(report.as_json()))
    return 0 if report.ok else 1


def _json_safe(value):
    """JSON has no ∞ or NaN: they are written as the strings "inf", "-inf", "nan"."""
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def main(argv=None):
    """Run the command line; returns the exit status (0 agrees, 1 parts, 2 usage error)."""
    try:
        args = _parser().parse_args(argv)
        if args.command == "optimizer":
            return _optimizer(args)
        if args.command == "self":
            return _self(args)
        return _layer(args)
    except UsageError as error:
        print(f"{PROGRAM}: error: {error}", file=sys.stderr)
        return 2
