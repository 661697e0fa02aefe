"""The headline command, end to end on real MNIST (a small slice, so it runs in seconds)."""
import csv
import json

import numpy as np
import pytest

from minibng.train import load_npz
from minibng.examples import mnist_mlp
from minibng.examples.settings import judge
from support import metrics_rows, real_data_root


def test_mnist_mlp_writes_metrics_figures_and_a_table(tmp_path, capsys):
    out = tmp_path / "run"
    mnist_mlp.main(["--depth", "3,4", "--optimizers", "adam,adamng", "--epochs", "2", "--limit", "2000",
                    "--data-dir", str(real_data_root()), "--out", str(out), "--no-progress"])
    with open(out / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["optimizer", "depth", "seed", "epoch", "train_loss", "test_loss", "test_accuracy",
                             "seconds"]
    assert len(rows) == 2 * 2 * 2
    assert {(r["optimizer"], r["depth"]) for r in rows} == {(o, d) for o in ("adam", "adamng") for d in ("3", "4")}
    assert all(0 <= float(r["test_accuracy"]) <= 1 for r in rows)
    assert (out / "curves.png").stat().st_size > 10_000 and (out / "gradnorms.png").stat().st_size > 10_000
    assert (out / "depth4-adamng-seed0" / "checkpoint.npz").exists()
    # gradnorms.png's points: up to 30 an epoch; an epoch of 20 batches gives one point per step, 4 blocks each
    records = [json.loads(line) for line in open(out / "depth4-adamng-seed0" / "block_steps.jsonl")]
    assert len(records) == 2 * 20 and records[-1]["step"] == 40 and records[-1]["epoch"] == 2
    assert all(len(r["gradient_norms"]) == len(r["step_norms"]) == 4 for r in records)
    printed = capsys.readouterr().out
    assert "final training/test objective (mnist" in printed and printed.count("adamng") >= 2
    assert "  device  cpu (float32), 1 CPU thread(s)\n" in printed and f"  output  {out}\n" in printed
    assert f"mnist from {real_data_root() / 'mnist'}; --limit: the first 2,000 training images" in printed
    for depth, name, epoch in [(d, o, e) for d in (3, 4) for o in ("adam", "adamng") for e in (1, 2)]:
        assert f"depth {depth} {name} seed 0  epoch {epoch}/2  train " in printed    # a line per epoch
    config = load_npz(out / "depth4-adamng-seed0" / "checkpoint.npz")["meta/config"]
    assert config == {"depth": 4, "optimizer": "adamng", "seed": 0, "dataset": "mnist", "epochs": 2,
                      "batch_size": 100, "lr": 1e-3, "limit": 2000, "threads": 1, "dtype": "float32"}
    record = json.loads((out / "experiment.json").read_text())
    assert record["example"] == "mnist_mlp" and record["settings"]["depths"] == [3, 4]
    assert record["settings"]["data_sizes"] == {"train": 60000, "test": 10000}


def test_several_seeds_run_each_configuration_once_per_seed(tmp_path, capsys):
    out = tmp_path / "run"
    mnist_mlp.main(["--depth", "3", "--optimizers", "adamng", "--epochs", "1", "--limit", "1000", "--seeds", "4,2",
                    "--data-dir", str(real_data_root()), "--out", str(out), "--no-progress"])
    with open(out / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["seed"] for r in rows] == ["4", "2"] and rows[0]["train_loss"] != rows[1]["train_loss"]
    assert (out / "depth3-adamng-seed4").is_dir() and (out / "depth3-adamng-seed2").is_dir()
    assert "mean [lowest, highest] over seeds 4,2" in capsys.readouterr().out


@pytest.mark.parametrize("seeds, message", [("", "without empty items"), ("a,b", "of distinct integers"),
                                            ("-1", "of distinct integers >= 0"), ("1,,2", "without empty items"),
                                            ("1,1", "'1,1' names 1 more than once")])
def test_bad_seed_lists_are_usage_errors(seeds, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        mnist_mlp.main(["--seeds", seeds])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "--seeds" in err and message in err


def test_resume_skips_finished_runs_and_gives_the_same_table(tmp_path, capsys):
    args = ["--depth", "3", "--optimizers", "adamng", "--epochs", "2", "--limit", "1000",
            "--data-dir", str(real_data_root()), "--out", str(tmp_path), "--no-progress"]
    mnist_mlp.main(args)
    first = metrics_rows(tmp_path / "metrics.csv")
    capsys.readouterr()
    mnist_mlp.main(args + ["--resume"])
    assert metrics_rows(tmp_path / "metrics.csv") == first
    printed = capsys.readouterr().out
    assert "(--resume: each run continues from its checkpoint)" in printed
    assert f"depth 3 adamng seed 0: resumed from {tmp_path / 'depth3-adamng-seed0' / 'checkpoint.npz'} after epoch 2 " \
           "of 2" in printed and "epoch 1/2" not in printed


def test_missing_data_fails_fast_with_instructions(isolated, monkeypatch):
    from minibng.data import download

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(download, "_open_url", offline, raising=True)
    with pytest.raises(SystemExit, match=r"(?s)train-images-idx3-ubyte.gz.*Looked in.*place it by hand.*"
                                         r"Without internet: .*apt install dataset-fashion-mnist.*"
                                         r"--dataset fashion-mnist\.$"):
        mnist_mlp.main(["--out", str(isolated / "run"), "--no-progress"])


def test_unknown_optimizer_is_rejected(capsys):
    with pytest.raises(SystemExit):
        mnist_mlp.main(["--optimizers", "adamm"])
    assert "unknown optimizer(s) ['adamm']" in capsys.readouterr().err


def test_a_run_does_not_depend_on_the_runs_before_it(tmp_path):
    """Every (depth, optimizer) run starts from the same weights and the same data order."""
    common = ["--depth", "3", "--epochs", "1", "--limit", "1000", "--data-dir", str(real_data_root()), "--no-progress"]
    mnist_mlp.main(common + ["--optimizers", "adam,adamng", "--out", str(tmp_path / "both")])
    mnist_mlp.main(common + ["--optimizers", "adamng", "--out", str(tmp_path / "alone")])
    read = lambda folder: [row for row in metrics_rows(folder / "metrics.csv") if row.startswith("adamng")]  # noqa: E731
    assert read(tmp_path / "both") == read(tmp_path / "alone")


def test_float64_trains_the_model_the_data_and_the_optimizer_in_float64(tmp_path):
    out = tmp_path / "run"
    argv = ["--depth", "3", "--optimizers", "adamng", "--epochs", "1", "--limit", "300", "--dtype", "float64",
            "--data-dir", str(real_data_root()), "--out", str(out), "--no-progress"]
    (train_x, _), (test_x, _) = mnist_mlp.load_data(judge(mnist_mlp.SCRIPT, argv, 1)).sets
    assert train_x.dtype == test_x.dtype == np.float64 and len(train_x) == 300
    mnist_mlp.main(argv)
    checkpoint = load_npz(out / "depth3-adamng-seed0" / "checkpoint.npz")
    assert checkpoint["meta/config"]["dtype"] == "float64"
    floating = {k: v.dtype for k, v in checkpoint.items() if k.startswith(("model/", "optim/")) and v.dtype.kind == "f"}
    assert floating and set(floating.values()) == {np.dtype("float64")}
