"""plot.block_steps: per-layer ‖g^i‖ and ‖Δx^i‖ at sub-epoch resolution, readable for a one-epoch run."""
import numpy as np
import pytest

from minibng import plot
from minibng.train import BlockStepRecorder


def records(epochs=1.0, per_epoch=30, blocks=4, every=20, fill=None):
    """Records of a run recorded every ``every`` steps: ‖g^i‖ falling 7× per block towards the input, steps of 1e-3."""
    count = int(round(epochs * per_epoch))
    rows = []
    for k in range(1, count + 1):
        gradient = [0.5 * 7.0 ** (i - blocks + 1) * (1 + 0.1 * np.sin(k)) for i in range(blocks)]
        rows.append({"step": k * every, "epoch": k / per_epoch, "steps": every, "gradient_norms": gradient,
                     "step_norms": [1e-3 * (1 + 0.01 * i) for i in range(blocks)] if fill is None else fill(k, blocks)})
    return rows


def data_axes(figure):
    """The four panels (rows: ‖g^i‖, ‖Δx^i‖; columns: runs), without the colour bar."""
    return [ax for ax in figure.axes if ax.get_label() != "<colorbar>"]


def test_one_epoch_draws_readable_curves_with_markers(tmp_path):
    figure = plot.block_steps({"Adam": records(), "AdamNG": records()}, tmp_path / "steps.png")
    assert (tmp_path / "steps.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    panels = data_axes(figure)
    assert len(panels) == 4
    for ax in panels:
        lines = ax.get_lines()
        assert len(lines) == 4                                    # one per block
        assert all(line.get_marker() == "o" for line in lines)   # a short run shows its points
        x = lines[0].get_xdata()
        assert len(x) == 30 and x[0] == pytest.approx(1 / 30) and x[-1] == pytest.approx(1.0)
        assert ax.get_xlim() == pytest.approx((0.0, 1.0))        # the epoch spread across the axis, not one column
        assert ax.get_yscale() == "log"
    assert [ax.get_title() for ax in panels[:2]] == ["Adam", "AdamNG"]
    texts = " ".join(t.get_text() for t in figure.texts)
    assert "each point the mean over 20 steps" in texts and "NG gives every layer a step of the same size" in texts


def test_long_runs_draw_lines_without_markers_over_their_epochs(tmp_path):
    figure = plot.block_steps({"AdamNG": records(epochs=8)}, tmp_path / "steps.png")
    for ax in data_axes(figure):
        assert all(line.get_marker() in (None, "None", "") for line in ax.get_lines())
        assert ax.get_xlim() == pytest.approx((0.0, 8.0))


def test_zero_and_non_finite_values_leave_gaps(tmp_path):
    def steps(k, blocks):   # block 1 never moves; block 2 diverges once
        return [0.0, np.inf if k == 3 else 1e-3, *([1e-3] * (blocks - 2))]

    figure = plot.block_steps({"run": records(per_epoch=6, fill=steps)}, tmp_path / "steps.png")
    step_panel = data_axes(figure)[1]
    first, second = step_panel.get_lines()[:2]
    assert np.isnan(first.get_ydata()).all()
    assert np.isnan(second.get_ydata()[2]) and np.isfinite(np.delete(second.get_ydata(), 2)).all()


def test_a_run_whose_steps_are_all_zero_still_draws(tmp_path):
    figure = plot.block_steps({"run": records(per_epoch=4, fill=lambda k, blocks: [0.0] * blocks)},
                              tmp_path / "steps.png")
    assert data_axes(figure)[1].get_yscale() == "linear"
    assert (tmp_path / "steps.png").stat().st_size > 0


def test_a_recorder_is_drawn_from_its_records(tmp_path):
    recorder = BlockStepRecorder(every=20)
    recorder.records = records(per_epoch=5)
    figure = plot.block_steps({"AdamNG": recorder}, tmp_path / "steps.png", caption=None, title="depth 4")
    assert [t.get_text() for t in figure.texts] == ["depth 4"]   # the title, and no caption
    assert len(data_axes(figure)[0].get_lines()) == 4


def test_a_run_without_records_leaves_its_column_empty(tmp_path):
    figure = plot.block_steps({"Adam": records(per_epoch=3), "AdamNG": []}, tmp_path / "steps.png")
    adam_top, adamng_top = data_axes(figure)[:2]
    assert len(adam_top.get_lines()) == 4 and adamng_top.get_lines() == []
