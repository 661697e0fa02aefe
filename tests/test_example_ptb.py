"""Figure 3's command end to end on the real Penn Treebank (a few short windows, so it runs in seconds), and the
BPTT window adapter it trains on (order, length, resumable position)."""
import csv
import math
import re

import numpy as np
import pytest

from minibng.data import ptb
from minibng.examples import ptb_lstm
from minibng.examples.flags import UsageError
from minibng.examples.settings import judge
from minibng.train import load_npz
from support import host, metrics_rows, real_data_root


def read(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def quick(out, *extra):
    """Three windows of 10 streams × 8 words (--limit counts training words), evaluated on the first 2,000 words of
    the validation and test texts."""
    return ["--epochs", "1", "--limit", "250", "--batch-size", "10", "--bptt", "8", "--eval-limit", "2000",
            "--data-dir", str(real_data_root("ptb")), "--out", str(out), "--no-progress", *extra]


def test_metrics_curves_and_table(tmp_path, capsys):
    ptb_lstm.main(quick(tmp_path, "--optimizers", "adamng,adam", "--bptt", "6,9", "--epochs", "2"))
    rows = read(tmp_path / "metrics.csv")
    assert list(rows[0]) == ["optimizer", "bptt", "seed", "epoch", "train_ppl", "valid_ppl", "test_ppl", "seconds"]
    assert [(r["bptt"], r["optimizer"], r["seed"], r["epoch"]) for r in rows] == [
        (b, o, "0", e) for b in ("6", "9") for o in ("adamng", "adam") for e in "12"]
    for r in rows:
        run = read(tmp_path / f"bptt{r['bptt']}-{r['optimizer']}-seed0" / "metrics.csv")[int(r["epoch"]) - 1]
        for split in ("train", "valid", "test"):   # perplexity = exp(mean cross-entropy per token)
            assert float(r[f"{split}_ppl"]) == pytest.approx(math.exp(float(run[f"{split}_loss"])), rel=1e-9)
        # A few steps from uniform(±0.1): still close to the vocabulary size, and already below it.
        assert 5_000 < float(r["valid_ppl"]) < 10_000 and float(r["test_ppl"]) < 10_000
    assert float(rows[1]["train_ppl"]) < float(rows[0]["train_ppl"])
    assert (tmp_path / "curves.png").stat().st_size > 10_000
    assert (tmp_path / "bptt9-adam-seed0" / "checkpoint.npz").exists()
    printed = capsys.readouterr().out
    assert re.search(r"bptt 6 adamng seed 0 +epoch 2/2 +perplexity train [0-9.]+ +valid [0-9.]+ +test [0-9.]+", printed)
    assert "validation/test perplexity after epoch 2" in printed
    last = rows[3]
    assert f"{float(last['valid_ppl']):.1f}/{float(last['test_ppl']):.1f}" in printed


def test_resume_gives_the_same_table_in_float64(tmp_path):
    args = quick(tmp_path, "--optimizers", "sgdmng", "--dtype", "float64")
    ptb_lstm.main(args)
    first = metrics_rows(tmp_path / "metrics.csv")
    ptb_lstm.main(args + ["--resume"])
    assert metrics_rows(tmp_path / "metrics.csv") == first
    checkpoint = load_npz(tmp_path / "bptt8-sgdmng-seed0" / "checkpoint.npz")
    assert checkpoint["meta/config"]["dtype"] == "float64" and checkpoint["model/0.weight"].dtype == np.float64


def test_paper_flags_and_defaults():
    args = judge(ptb_lstm.SCRIPT, [], 1)
    assert (args.bptts, args.optimizers, args.epochs, args.batch_size, args.limit, args.eval_limit) == (
        (40,), ("adam", "adamng"), 2, 100, 100_000, 20_000)
    paper = judge(ptb_lstm.SCRIPT, ["--paper"], 1)
    assert paper.bptts == (40, 400, 1000) and paper.epochs == 50 and paper.limit == 929_589
    assert paper.eval_limit == 82_430    # every word of both texts (the test text is the longer)
    assert paper.optimizers == ("sgdm", "sgdmng", "adagrad", "adagradng", "adam", "adamng")
    assert judge(ptb_lstm.SCRIPT, ["--paper", "--bptt", "40", "--epochs", "3"], 1).bptts == (40,)


@pytest.mark.parametrize("flags, message", [
    (["--optimizers", "adamm"], "unknown optimizer(s) ['adamm']"),
    (["--bptt", "40,x"], "--bptt must be a comma list of distinct integers >= 1"),
    (["--bptt", "0"], "--bptt must be a comma list of distinct integers >= 1"),
    (["--bptt", "40,,400"], "--bptt must be a comma list without empty items"),
    (["--limit", "0"], "--limit must be >= 1"),
    (["--limit", "4000"], "--limit 4,000 words are too few for one window: 100 streams"),
    (["--limit", "all", "--bptt", "20000"], "--limit all (929,589) words are too few for one window"),
    (["--eval-batch-size", "100000"], "give --eval-batch-size 10000 or less"),
    (["--eval-limit", "all", "--eval-batch-size", "100000"], "the 73,760 words of the validation text"),
    (["--eval-limit", "0"], "--eval-limit must be >= 1")])
def test_bad_flags_are_rejected_before_any_data_is_read(capsys, flags, message, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        ptb_lstm.main([*flags, "--out", str(tmp_path / "run"), "--data-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.startswith("usage: ") and message in err, err
    assert list(tmp_path.iterdir()) == []


def test_the_world_size_counts_in_the_streams():
    """Under mpiexec -n N the text is cut into N × --batch-size streams: the window needs N times the words."""
    assert judge(ptb_lstm.SCRIPT, ["--limit", "8200"], 2).limit == 8200
    with pytest.raises(UsageError, match=r"8,199 words are too few for one window: 200 streams \(2 process"):
        judge(ptb_lstm.SCRIPT, ["--limit", "8199"], 2)


def test_perplexity_overflows_to_infinity():
    assert ptb_lstm.perplexity(0.0) == 1.0
    assert ptb_lstm.perplexity(1000.0) == math.inf
    assert math.isnan(ptb_lstm.perplexity(math.nan))


def test_windows_follow_the_streams_and_keep_every_token(device):
    ids = np.arange(103) * 7 % 101
    stream = ptb.batchify(ids, 4)                                   # (25, 4)
    train = ptb.Windows(ids, 4, bptt=6, device=device)
    assert len(train) == 4 and train.tokens == 4 * 6 * 4          # ⌊24 / 6⌋ full windows
    expected = list(ptb.bptt_windows(stream, 6))
    for (x, y), (ex, ey) in zip(train, expected, strict=True):
        assert x.shape == y.shape == (6, 4)
        np.testing.assert_array_equal(host(x), ex)
        np.testing.assert_array_equal(host(y), ey)
    evaluation = ptb.Windows(ids, 4, bptt=7, drop_last=False, device=device)
    targets = np.concatenate([host(y) for _, y in evaluation])
    assert len(evaluation) == 4 and evaluation.tokens == targets.size == 24 * 4
    np.testing.assert_array_equal(targets, stream[1:])             # every token after each stream's first
    assert len(ptb.Windows(ids, 4, bptt=7, drop_last=False, limit=2)) == 2


def test_windows_resume_mid_epoch(device):
    ids = np.random.default_rng(3).integers(0, 50, 200)
    whole = ptb.Windows(ids, 5, bptt=4, device=device)
    epoch0 = [host(x) for x, _ in whole]
    assert whole.state() == {"epoch": 1, "window": 0}
    part = ptb.Windows(ids, 5, bptt=4, device=device)
    seen = []
    for x, _ in part:
        seen.append(host(x))
        if len(seen) == 3:
            state = {k: np.asarray(v) for k, v in part.state().items()}   # as read back from an .npz
            break
    resumed = ptb.Windows(ids, 5, bptt=4, device=device)
    resumed.set_state(state)
    seen += [host(x) for x, _ in resumed]
    assert len(seen) == len(epoch0) == 9
    for a, b in zip(seen, epoch0):
        np.testing.assert_array_equal(a, b)
    assert resumed.state() == {"epoch": 1, "window": 0}
    assert [host(x) for x, _ in resumed][0].tolist() == epoch0[0].tolist()   # next epoch starts over


def test_windows_reject_bad_arguments():
    with pytest.raises(ValueError, match="bptt"):
        ptb.Windows(np.arange(50), 2, bptt=0)
    with pytest.raises(ValueError, match="limit"):
        ptb.Windows(np.arange(50), 2, bptt=3, limit=0)
