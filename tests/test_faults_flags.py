"""Fault table, the experiment scripts' flags: every bad value is a usage error (exit status 2) before any work, in
all four scripts alike; a folder holding checkpoints is never started over silently."""
import pytest

from minibng import backend
from minibng.examples import cifar_resnet, mnist_mlp, ptb_lstm, rt_cnn
from promise_table import registry
from support import real_data_root

SECTION = "Experiment scripts and their flags"
PROMISES, promise = registry()
SCRIPTS = [mnist_mlp, cifar_resnet, ptb_lstm, rt_cnn]
BAD_VALUES = [["--epochs", "0"], ["--epochs", "-3"], ["--limit", "0"], ["--limit", "-5"], ["--threads", "0"],
              ["--batch-size", "0"], ["--lr", "0"], ["--lr", "nan"], ["--seeds", "1,1"], ["--seeds", "2-4"],
              ["--optimizers", "adamm"], ["--epochs", "two"]]


def assert_usage_error(script, argv, capsys, *words):
    """``script`` exits with status 2 and a message holding ``words`` (the flag), having created nothing."""
    with pytest.raises(SystemExit) as exit_info:
        script.main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.startswith("usage: "), err
    assert all(word in err for word in words), err


@promise("flag-bad-value", "`--epochs 0` or `-3`, `--limit 0` or `-5`, `--threads 0`, `--batch-size 0`, `--lr 0` or "
         "`nan`, `--seeds 1,1` or `2-4`, an unknown optimizer or a word for a number, given to any of the four "
         "experiment scripts", "usage error (exit status 2) naming the flag, before the output folder is created or "
         "any data is read")
def _bad_values(tmp_path, capsys):
    for script in SCRIPTS:
        for flag, value in BAD_VALUES:
            out = tmp_path / f"{script.__name__}{flag}{value}"
            assert_usage_error(script, [flag, value, "--out", str(out), "--data-dir", str(tmp_path / "none")], capsys,
                               flag.lstrip("-").split("-")[0] if flag != "--optimizers" else "unknown optimizer")
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
         "usage error (exit status 2) naming `--out` and the reason, never a traceback")
def _out_cannot_be_created(capsys):
    assert_usage_error(mnist_mlp, ["--out", "/proc/minibng-cannot-be-here/run"], capsys, "--out", "cannot create it")


@promise("data-missing-leaves-no-folder", "an experiment whose data set cannot be found or downloaded, into an "
         "`--out` that did not exist", "the error names every place looked in and what to do; no output folder is "
         "left behind (not even its lock file)")
def _data_missing_leaves_no_folder(isolated, monkeypatch):
    from minibng.data import download

    monkeypatch.setattr(download, "_open_url", lambda *args, **kwargs: (_ for _ in ()).throw(OSError("offline")))
    out = isolated / "fresh" / "run"
    with pytest.raises(SystemExit, match=r"(?s)was not found.*Looked in.*docs/data\.md"):
        mnist_mlp.main(["--out", str(out), "--no-progress"])
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
         "checkpoints of earlier runs", "usage error (exit status 2) saying to pass --resume or choose another --out; "
         "the checkpoints are untouched (a fresh start would overwrite them)")
def _out_holds_checkpoints(tmp_path, capsys):
    argv = ["--depth", "3", "--optimizers", "adamng", "--epochs", "1", "--limit", "300", "--data-dir",
            str(real_data_root()), "--out", str(tmp_path), "--no-progress"]
    mnist_mlp.main(argv)
    checkpoint = tmp_path / "depth3-adamng-seed0" / "checkpoint.npz"
    before = checkpoint.read_bytes()
    capsys.readouterr()
    for script in SCRIPTS:
        assert_usage_error(script, argv[argv.index("--out"):], capsys, "holds the checkpoints of earlier runs",
                           "depth3-adamng-seed0", "pass --resume")
    assert checkpoint.read_bytes() == before


@pytest.mark.parametrize("case", PROMISES, ids=lambda case: case.id)
def test_promise(case, request):
    case.run(request)
