"""The CIFAR example end to end on tiny files in the exact CIFAR binary format (CIFAR is not on these machines)."""
import csv
import hashlib

import numpy as np
import pytest

from minibng.data import checksums, cifar, root
from minibng.data.checksums import FileSpec
from minibng.examples import cifar_resnet
from minibng.train import load_npz


@pytest.fixture
def fake_cifar_root(tmp_path, monkeypatch):
    """``tmp/data/<name>/…bin`` holding 24 records per file, layouts whose SHA-256 sums are those files', and the
    script's published sizes made theirs."""
    monkeypatch.delenv("MINIBNG_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(root, "SYSTEM_ROOTS", ())
    checksums._verified.clear()
    rng = np.random.default_rng(0)
    for name, real in list(cifar.DATASETS.items()):
        sums = {}
        for spec in real.train + real.test:
            images = rng.integers(0, 256, (24, 3, 32, 32), dtype=np.uint8)
            labels = np.stack([rng.integers(0, k, 24) for k in real.classes], axis=1)
            images[:, 0] = np.where(labels[:, -1:, None] % 2, images[:, 0] // 2, images[:, 0])  # a learnable cue
            record = cifar.encode_records(images, labels)
            path = tmp_path / "data" / name / spec.name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(record)
            sums[spec.name] = hashlib.sha256(record).hexdigest()
        layout = cifar.CifarLayout(FileSpec(real.archive.name, ("0" * 64,)),
                                   tuple(FileSpec(s.name, (sums[s.name],)) for s in real.train),
                                   tuple(FileSpec(s.name, (sums[s.name],)) for s in real.test), real.label_bytes,
                                   real.classes)
        monkeypatch.setitem(cifar.DATASETS, name, layout)
        monkeypatch.setitem(cifar_resnet.SIZES, name, {"train": 24 * len(real.train), "test": 24 * len(real.test)})
    return tmp_path / "data"


def run(data, out, *extra):
    return cifar_resnet.main(["--depth", "8", "--epochs", "1", "--batch-size", "16", "--limit", "40",
                              "--data-dir", str(data), "--out", str(out), "--no-progress", *extra])


def read_rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_cifar10_end_to_end_on_binary_files(fake_cifar_root, tmp_path, capsys):
    out = tmp_path / "run"
    run(fake_cifar_root, out, "--optimizers", "sgdm,adamngadap", "--seeds", "0,1")
    rows = read_rows(out / "metrics.csv")
    assert list(rows[0]) == ["optimizer", "depth", "seed", "epoch", "train_loss", "test_loss", "test_accuracy",
                             "seconds"]
    assert {(r["optimizer"], r["seed"]) for r in rows} == {(o, s) for o in ("sgdm", "adamngadap") for s in "01"}
    assert all(r["depth"] == "8" and r["epoch"] == "1" and np.isfinite(float(r["train_loss"])) for r in rows)
    assert (out / "curves.png").stat().st_size > 10_000
    assert (out / "depth8-adamngadap-seed1" / "checkpoint.npz").exists()
    printed = capsys.readouterr().out
    assert "final test error % (cifar-10, 1 epoch, mean ± std over 2 seed(s) beside the paper's Table 1" in printed
    sgdm_line = next(line for line in printed.splitlines() if line.startswith("sgdm "))
    assert "±" in sgdm_line and "7.93 ± 0.15" not in sgdm_line  # depth 8 has no paper column
    errors = [100 * (1 - float(r["test_accuracy"])) for r in rows if r["optimizer"] == "sgdm"]
    assert f"{np.mean(errors):.2f} ± {np.std(errors):.2f}" in sgdm_line


def test_cifar100_holdout_and_paper_column(fake_cifar_root, tmp_path, capsys, monkeypatch):
    out = tmp_path / "run100"
    monkeypatch.setattr(cifar_resnet, "PAPER_DEPTHS", (8, 32, 44, 56, 110))  # pretend depth 8 is in Table 2
    run(fake_cifar_root, out, "--dataset", "cifar-100", "--optimizers", "sgdmngadap", "--holdout", "8",
        "--shortcut", "B")
    rows = read_rows(out / "metrics.csv")
    assert len(rows) == 1 and 0 <= float(rows[0]["valid_accuracy"]) <= 1 and "valid_loss" in rows[0]
    printed = capsys.readouterr().out
    assert "Table 2" in printed and "31.43 ± 0.35" in printed  # the paper's SGDMNGadap, ResNet-20 cell


def test_resume_gives_the_same_metrics(fake_cifar_root, tmp_path):
    out = tmp_path / "resumed"
    run(fake_cifar_root, out, "--optimizers", "sgdmclip")
    first = read_rows(out / "metrics.csv")
    run(fake_cifar_root, out, "--optimizers", "sgdmclip", "--resume")
    again = read_rows(out / "metrics.csv")
    assert [{k: v for k, v in r.items() if k != "seconds"} for r in again] == \
        [{k: v for k, v in r.items() if k != "seconds"} for r in first]


def test_bn_update_changes_the_evaluation_only(fake_cifar_root, tmp_path):
    run(fake_cifar_root, tmp_path / "plain", "--optimizers", "sgdm")
    run(fake_cifar_root, tmp_path / "precise", "--optimizers", "sgdm", "--bn-update", "2")
    plain, precise = read_rows(tmp_path / "plain" / "metrics.csv"), read_rows(tmp_path / "precise" / "metrics.csv")
    assert precise[0]["train_loss"] == plain[0]["train_loss"]
    assert precise[0]["test_loss"] != plain[0]["test_loss"]


def test_paper_tables_are_complete():
    for table in cifar_resnet.PAPER_TABLES.values():
        assert sorted(table) == sorted(cifar_resnet.PAPER_OPTIMIZERS)
        assert all(len(cells) == len(cifar_resnet.PAPER_DEPTHS) for cells in table.values())
    assert cifar_resnet.PAPER_TABLES["cifar-10"]["sgdmngadap"][-1] == (5.87, 0.10)


@pytest.mark.parametrize("argv,message", [(["--depth", "21"], "6n\\+2"), (["--optimizers", "sgdx"], "unknown optimizer"),
                                          (["--dataset", "svhn"], "invalid choice"),
                                          (["--bn-update", "-1"], "--bn-update must be >= 0"),
                                          (["--depth", "20,,32"], "--depth must be a comma list without empty"),
                                          (["--depth", "20,20"], "--depth '20,20' names 20 more than once"),
                                          (["--holdout", "5000"], "--holdout must be >= 0 and leave at least 1"),
                                          (["--milestones", "81,81"], "--milestones '81,81' names 81 more")])
def test_bad_arguments_are_usage_errors(argv, message, capsys):
    with pytest.raises(SystemExit):
        cifar_resnet.main(argv)
    assert message.replace("\\", "") in capsys.readouterr().err.replace("\\", "")


def test_the_published_sizes_are_checked_after_loading(fake_cifar_root, tmp_path, monkeypatch):
    """Data files of other sizes than the published ones are refused before any folder is made (--limit was judged
    against the published sizes)."""
    monkeypatch.setitem(cifar_resnet.SIZES, "cifar-10", {"train": 50_000, "test": 10_000})
    with pytest.raises(SystemExit, match=r"cifar-10 holds \{'train': 120, 'test': 24\} examples, not the published"):
        run(fake_cifar_root, tmp_path / "run", "--optimizers", "sgdm")
    assert not (tmp_path / "run").exists()


def test_float64_normalizes_the_images_into_float64(fake_cifar_root, tmp_path):
    out = tmp_path / "run"
    run(fake_cifar_root, out, "--optimizers", "sgdm", "--dtype", "float64")
    config = load_npz(out / "depth8-sgdm-seed0" / "checkpoint.npz")
    assert config["meta/config"]["dtype"] == "float64" and config["model/0.weight"].dtype == np.float64
