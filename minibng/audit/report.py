"""The optimizer audit's printed report: a table a person reads in ten seconds, then the first disagreement."""
from __future__ import annotations

__all__ = ["format_audit", "format_scale", "format_runs", "format_worst"]


def format_scale(scale):
    """1, 1e-30, 1e+30, 0: a scale as a person writes it."""
    return f"{scale:g}"


def format_worst(value):
    """A run's worst |Δu| / allowed: 0.02, ∞, or n/a where the candidate raised (None)."""
    if value is None:
        return "n/a"
    return "∞" if value == float("inf") else f"{value:.2g}"


def format_runs(runs):
    """One line per run: scale, block scaled, result, worst |Δu| as a fraction of the tolerance."""
    lines = [f"  {'scale':<8} {'block scaled':<16} {'result':<22} worst/tolerance"]
    for run in runs:
        result = "agrees" if run.agrees else f"parts at step {run.first_step}"
        if run.error:
            result = f"raised at step {run.first_step}"
        lines.append(f"  {format_scale(run.scale):<8} {run.block + f' ({run.size})':<16} {result:<22} "
                     f"{format_worst(run.worst)}")
    return lines


def format_audit(audit):
    settings = ", ".join(f"{k}={v!r}" for k, v in audit.settings.items())
    lines = [f"minibng.audit: {audit.candidate} ({audit.framework}) against the reference "
             f"{audit.reference}{f'({settings})' if settings else ''}",
             f"{audit.dtype}, {audit.steps} steps per run, seed {audit.seed}; tolerance: {audit.tolerance.describe()}",
             ""]
    lines += format_runs(audit.runs)
    lines.append("")
    if audit.agrees:
        lines.append("AGREES: every step of every block within the tolerance.")
        return "\n".join(lines)
    first = audit.first
    lines.append(f"PARTS at scale {format_scale(first.scale)}, step {first.step}, block {first.block} "
                 f"({first.size} numbers)")
    lines.append(f"  stage:     {first.stage}")
    if first.coordinate is not None:
        what = "x_1" if first.step == 0 else "step u = x_t − x_t+1"
        lines.append(f"  {what} at {first.coordinate}: reference {first.reference:.6g}, candidate "
                     f"{first.candidate:.6g}, difference {first.difference:.3g} (allowed {first.allowed:.2g})")
    if first.chain:
        lines.append(f"  reference's chain at step {first.step}, block {first.block} (‖·‖): {first.chain}")
    if audit.variant is not None:
        description = audit.variant_descriptions[audit.variant][0]
        lines.append(f"  variant:   {audit.variant} — {description}")
        others = [name for name in audit.matches if name != audit.variant]
        if others:
            lines.append(f"             (reproduced by {', '.join(others)} as well)")
    else:
        lines.append("  variant:   none of the catalogue's variants reproduces the candidate")
    return "\n".join(lines)
