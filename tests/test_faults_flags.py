"""Fault table, the experiment scripts' flags: every bad value is a usage error (exit status 2) before any data is
read or folder made, in all four scripts alike; values are recorded as used; a failed start leaves nothing behind;
a folder holding checkpoints is never started over silently."""
import pytest

from minibng import backend
from minibng.examples import cifar_resnet, mnist_mlp, ptb_lstm, rt_cnn, settings
from minibng.train import LOCK_NAME, load_npz
from promise_table import registry
from support import real_data_root

SECTION = "Experiment scripts and their flags"
PROMISES, promise = registry()
SCRIPTS = [mnist_mlp, cifar_resnet, ptb_lstm, rt_cnn]
BAD_VALUES = [["--epochs", "0"], ["--epochs", "-3"], ["--limit", "0"], ["--limit", "-5"], ["--threads", "0"],
              ["--batch-size", "0"], ["--lr", "0"], ["--lr", "nan"], ["--seeds", "1,1"], ["--seeds", "2-4"],
              ["--optimizers", "adamm"], ["--epochs", "two"]]
BAD_LISTS = [("--seeds", "1,,2", "without empty items"), ("--optimizers", "adam,,adamng", "without empty items"),
             ("--optimizers", "adam,adam", "names adam more than once"), ("--seeds", "3,", "without empty items")]
OWN_BAD_LISTS = {mnist_mlp: [("--depth", "18,,6", "without empty items"), ("--depth", "6,6", "names 6 more")],
                 cifar_resnet: [("--depth", "20,,32", "without empty items"), ("--milestones", "5,5", "names 5")],
                 ptb_lstm: [("--bptt", "40,,400", "without empty items"), ("--bptt", "40,40", "names 40 more")],
                 rt_cnn: []}


def assert_usage_error(script, argv, capsys, *words):
    """``script`` exits with status 2 and a message holding ``words`` (the flag), having created nothing."""
    with pytest.raises(SystemExit) as exit_info:
        script.main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.startswith("usage: "), err
    assert all(word in err for word in words), err


def empty_folder(tmp_path, name="data"):
    """An existing, empty folder (a --data-dir that holds nothing: the script must stop before it looks)."""
    folder = tmp_path / name
    folder.mkdir()
    return folder


@promise("flag-bad-value", "`--epochs 0` or `-3`, `--limit 0` or `-5`, `--threads 0`, `--batch-size 0`, `--lr 0` or "
         "`nan`, `--seeds 1,1` or `2-4`, an unknown optimizer or a word for a number, given to any of the four "
         "experiment scripts", "usage error (exit status 2) naming the flag, before the output folder is created or "
         "any data is read")
def _bad_values(tmp_path, capsys):
    data = empty_folder(tmp_path)
    for script in SCRIPTS:
        for flag, value in BAD_VALUES:
            out = tmp_path / f"{script.__name__}{flag}{value}"
            assert_usage_error(script, [flag, value, "--out", str(out), "--data-dir", str(data)], capsys,
                               flag.lstrip("-").split("-")[0] if flag != "--optimizers" else "unknown optimizer")
            assert not out.exists()


@promise("flag-list-empty-or-repeated", "`--seeds 1,,2`, `--optimizers adam,,adamng`, `--optimizers adam,adam`, "
         "`--depth 18,,6` (any comma list: `--bptt`, `--milestones` too)", "usage error (exit status 2) naming the "
         "flag and the empty or repeated item, before any data is read or folder made; never a run silently dropped, "
         "nor one trained twice into one folder")
def _bad_lists(tmp_path, capsys):
    data = empty_folder(tmp_path)
    for script in SCRIPTS:
        for flag, value, words in BAD_LISTS + OWN_BAD_LISTS[script]:
            out = tmp_path / "run"
            assert_usage_error(script, [flag, value, "--out", str(out), "--data-dir", str(data)], capsys, flag, words)
            assert not out.exists()


@promise("flag-out-is-a-file", "`--out` naming a file, or a folder inside a file",
         "usage error (exit status 2): the path is not a folder; the file is untouched")
def _out_is_a_file(tmp_path, capsys):
    victim = tmp_path / "notes.txt"
    victim.write_text("mine")
    for script in SCRIPTS:
        for out in (victim, victim / "run"):
            assert_usage_error(script, ["--out", str(out)], capsys, "--out", "is not a folder")
    assert victim.read_text() == "mine"


@promise("flag-out-cannot-be-created", "`--out` that cannot be created (under /proc, or a read-only file system)",
         "usage error (exit status 2) naming `--out` and the reason, never a traceback; nothing is left behind")
def _out_cannot_be_created(capsys):
    assert_usage_error(mnist_mlp, ["--out", "/proc/minibng-cannot-be-here/run", "--data-dir", str(real_data_root()),
                                   "--limit", "300"], capsys, "--out", "cannot create it")


@promise("data-missing-leaves-no-folder", "an experiment whose data set cannot be found or downloaded, into an "
         "`--out` that did not exist (the default `runs/<script>` included)", "the error names every place looked in "
         "and what to do; nothing is left behind: no output folder (not `runs/`, not a lock file), no empty cache "
         "folder")
def _data_missing_leaves_no_folder(isolated, monkeypatch):
    from minibng.data import download

    monkeypatch.setattr(download, "_open_url", lambda *args, **kwargs: (_ for _ in ()).throw(OSError("offline")))
    with pytest.raises(SystemExit, match=r"(?s)was not found.*Looked in.*docs/data\.md"):
        mnist_mlp.main(["--no-progress"])
    with pytest.raises(SystemExit, match=r"(?s)was not found.*Looked in.*docs/data\.md"):
        mnist_mlp.main(["--out", str(isolated / "fresh" / "run"), "--no-progress"])
    assert sorted(p.name for p in isolated.iterdir()) == []   # no runs/, no fresh/, no xdg/minibng cache


@promise("flag-data-dir-missing", "`--data-dir /nonexistent` (a folder that does not exist), or a file",
         "usage error (exit status 2) naming `--data-dir`: it is looked in, never created")
def _data_dir_missing(tmp_path, capsys):
    for script in SCRIPTS:
        missing = tmp_path / "nonexistent"
        assert_usage_error(script, ["--data-dir", str(missing), "--out", str(tmp_path / "run")], capsys,
                           f"--data-dir {missing} does not exist")
        (tmp_path / "file").write_text("")
        assert_usage_error(script, ["--data-dir", str(tmp_path / "file")], capsys, "is a file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


@promise("flag-download-timeout-zero", "`MINIBNG_DOWNLOAD_TIMEOUT=0` (or any value that is not a number of seconds "
         "> 0) when an experiment starts", "one-line error naming the variable (exit status 2), before any data is "
         "read or folder made; nothing is left behind")
def _download_timeout_zero(isolated, monkeypatch, capsys):
    monkeypatch.setenv("MINIBNG_DOWNLOAD_TIMEOUT", "0")
    with pytest.raises(SystemExit) as exit_info:
        mnist_mlp.main(["--no-progress"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1 and "MINIBNG_DOWNLOAD_TIMEOUT='0'" in err, err
    assert list(isolated.iterdir()) == []


@promise("flag-limit-beyond-data", "`--limit 100000` for MNIST's 60,000 training images (more than the data set "
         "holds)", "the run uses all 60,000, the header says so, and every record holds 60000, the value used (a "
         "resume with `--limit all` or `--limit 60000` fits it)")
def _limit_beyond_data(tmp_path, capsys):
    argv = ["--limit", "100000", "--depth", "2", "--optimizers", "sgd", "--epochs", "1", "--batch-size", "1000",
            "--data-dir", str(real_data_root()), "--out", str(tmp_path), "--no-progress"]
    mnist_mlp.main(argv)
    out = capsys.readouterr().out
    assert "--limit 100,000 is more than the 60,000 training images of mnist: all 60,000 are used" in out
    assert load_npz(tmp_path / "depth2-sgd-seed0" / "checkpoint.npz")["meta/config"]["limit"] == 60000
    assert settings.judge(mnist_mlp.SCRIPT, ["--limit", "all"], 1).recorded()["limit"] == 60000


@promise("flag-threads-above-cores", "`--threads 64` on a machine whose process may use 2 cores",
         "the run uses 2 threads, and the header says why (threads beyond free cores spin and stall); the runs "
         "record the threads used")
def _threads_above_cores(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(settings, "usable_cores", lambda: 2)
    mnist_mlp.main(["--threads", "64", "--depth", "2", "--optimizers", "sgd", "--epochs", "1", "--limit", "300",
                    "--data-dir", str(real_data_root()), "--out", str(tmp_path), "--no-progress"])
    out = capsys.readouterr().out
    assert "  device  cpu (float32), 2 CPU thread(s)\n" in out and "--threads 64 is more than the 2 core(s)" in out
    assert load_npz(tmp_path / "depth2-sgd-seed0" / "checkpoint.npz")["meta/config"]["threads"] == 2


@promise("flag-ptb-too-large-for-the-text", "`ptb_lstm --eval-batch-size 100000`, or `--limit all --bptt 20000` "
         "(more streams or a longer window than the text holds)", "usage error (exit status 2) naming the flag, the "
         "words there are and what fits, before the text is read or `--out` is made")
def _ptb_too_large(tmp_path, capsys):
    data = empty_folder(tmp_path)
    out = tmp_path / "run"
    assert_usage_error(ptb_lstm, ["--eval-batch-size", "100000", "--out", str(out), "--data-dir", str(data)], capsys,
                       "--eval-batch-size 100000", "give --eval-batch-size 10000 or less")
    assert_usage_error(ptb_lstm, ["--limit", "all", "--bptt", "20000", "--out", str(out), "--data-dir", str(data)],
                       capsys, "--limit all (929,589) words are too few for one window", "--bptt 20000")
    assert not out.exists()


@promise("flag-gpu-without-cupy", "`--device gpu` where CuPy is not installed (or sees no GPU), or `--device tpu`",
         "usage error (exit status 2) saying what to install, before the output folder is created or any data is read")
def _gpu_without_cupy(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(backend, "cupy_or_none", lambda: None)
    for script in SCRIPTS:
        out = tmp_path / script.__name__
        assert_usage_error(script, ["--device", "gpu", "--out", str(out)], capsys, "--device gpu", "pip install")
        assert_usage_error(script, ["--device", "tpu", "--out", str(out)], capsys, "unknown device 'tpu'")
        assert not out.exists()


@promise("out-holds-checkpoints", "an experiment started without `--resume` into an `--out` that holds the "
         "checkpoints of earlier runs", "usage error (exit status 2) saying to pass --resume or choose another --out "
         "(another script is told whose experiment the folder holds); the checkpoints are untouched (a fresh start "
         "would overwrite them)")
def _out_holds_checkpoints(tmp_path, capsys):
    argv = ["--depth", "3", "--optimizers", "adamng", "--epochs", "1", "--limit", "300", "--data-dir",
            str(real_data_root()), "--out", str(tmp_path), "--no-progress"]
    mnist_mlp.main(argv)
    checkpoint = tmp_path / "depth3-adamng-seed0" / "checkpoint.npz"
    before = checkpoint.read_bytes()
    capsys.readouterr()
    assert_usage_error(mnist_mlp, argv, capsys, "holds the checkpoints of earlier runs", "depth3-adamng-seed0",
                       "pass --resume")
    for script in SCRIPTS[1:]:
        assert_usage_error(script, argv[argv.index("--data-dir"):], capsys, "holds an experiment of mnist_mlp")
    assert checkpoint.read_bytes() == before and not (tmp_path / LOCK_NAME).exists()


@pytest.mark.parametrize("case", PROMISES, ids=lambda case: case.id)
def test_promise(case, request):
    case.run(request)
