"""Table 4's command end to end on the real RT polarity data (a few hundred sentences, so it runs in seconds)."""
import csv

import numpy as np
import pytest

from minibng.examples import rt_cnn
from minibng.examples.settings import judge
from minibng.train import load_npz
from support import metrics_rows, real_data_root


def read(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def quick(out, *extra):
    return ["--epochs", "2", "--limit", "150", "--data-dir", str(real_data_root("rt-polarity")), "--out", str(out),
            "--no-progress", *extra]


def test_table_metrics_curves_over_two_seeds(tmp_path, capsys):
    rt_cnn.main(quick(tmp_path, "--optimizers", "adamng,sgdm", "--seeds", "0,1"))
    rows = read(tmp_path / "metrics.csv")
    assert list(rows[0]) == ["optimizer", "seed", "epoch", "train_loss", "val_accuracy", "seconds"]
    assert [(r["optimizer"], r["seed"], r["epoch"]) for r in rows] == [
        (o, s, e) for s in "01" for o in ("adamng", "sgdm") for e in "12"]
    assert all(0 <= float(r["val_accuracy"]) <= 1 and float(r["train_loss"]) > 0 for r in rows)
    best = read(tmp_path / "best.csv")
    for b in best:
        mine = [float(r["val_accuracy"]) for r in rows if (r["optimizer"], r["seed"]) == (b["optimizer"], b["seed"])]
        assert float(b["best_val_accuracy"]) == max(mine)
    assert (tmp_path / "curves.png").stat().st_size > 10_000
    assert (tmp_path / "adamng-seed1" / "checkpoint.npz").exists()
    printed = capsys.readouterr().out
    assert "best validation accuracy over 2 epochs (2 seed(s), 90/10 split" in printed
    values = [100 * float(b["best_val_accuracy"]) for b in best if b["optimizer"] == "adamng"]
    assert f"{np.mean(values):.2f} ± {np.std(values, ddof=1):.2f}" in printed
    assert "77.11" in printed and "64.35" in printed and "Kim CNN-rand" in printed and "76.10" in printed


def test_cross_validation_writes_a_fold_column(tmp_path, monkeypatch):
    monkeypatch.setattr(rt_cnn, "FOLDS", 2)
    rt_cnn.main(quick(tmp_path, "--optimizers", "adam", "--cv", "--epochs", "1"))
    rows = read(tmp_path / "metrics.csv")
    assert list(rows[0]) == ["optimizer", "seed", "fold", "epoch", "train_loss", "val_accuracy", "seconds"]
    assert [r["fold"] for r in rows] == ["0", "1"]


def test_splits_are_seeded_and_folds_partition_the_data():
    chosen = judge(rt_cnn.SCRIPT, ["--seeds", "0,1", "--cv"], 1)
    keys = rt_cnn.runs(chosen)
    assert [(k["seed"], k["fold"]) for k in keys[::len(chosen.optimizers)]] == [(s, f) for s in (0, 1) for f in range(10)]
    for seed in (0, 1):
        held_out = np.concatenate([rt_cnn.split(103, seed, fold)[1] for fold in range(10)])
        assert sorted(held_out) == list(range(103))
    (train0, val0), (_, val1) = rt_cnn.split(1000, 0, None), rt_cnn.split(1000, 1, None)
    assert len(val0) == 100 and not set(train0) & set(val0) and not np.array_equal(val0, val1)


def test_resume_gives_the_same_table_in_float64(tmp_path):
    args = quick(tmp_path, "--optimizers", "adagradng", "--dtype", "float64")
    rt_cnn.main(args)
    first = metrics_rows(tmp_path / "metrics.csv")
    rt_cnn.main(args + ["--resume"])
    assert metrics_rows(tmp_path / "metrics.csv") == first
    checkpoint = load_npz(tmp_path / "adagradng-seed0" / "checkpoint.npz")
    assert checkpoint["meta/config"]["dtype"] == "float64" and checkpoint["model/0.weight"].dtype == np.float64


def test_bad_flags_are_rejected(capsys):
    with pytest.raises(SystemExit):
        rt_cnn.main(["--optimizers", "adamm"])
    assert "unknown optimizer(s) ['adamm']" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        rt_cnn.main(["--seeds", "-1"])


def test_the_training_split_counts_in_the_limit():
    """--limit counts sentences of the training split: 9,596 of the 10,662 (the 90/10 split's)."""
    assert rt_cnn.SIZES == {"train": 9596, "sentences": 10662}
    assert judge(rt_cnn.SCRIPT, ["--limit", "all"], 1).limit == 9596
    assert "all 9,596 are used" in judge(rt_cnn.SCRIPT, ["--limit", "10000"], 1).notes[0]
