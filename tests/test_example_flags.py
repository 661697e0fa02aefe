"""The four experiment scripts share one set of flags, meaning the same thing in each, with their defaults shown."""
import re

import pytest

from minibng import __version__, optim
from minibng.examples import cifar_resnet, mnist_mlp, ptb_lstm, rt_cnn

SCRIPTS = [mnist_mlp, cifar_resnet, ptb_lstm, rt_cnn]
SHARED = ["--dataset", "--optimizers", "--epochs", "--seeds", "--lr", "--batch-size", "--limit", "--threads",
          "--device", "--data-dir", "--out", "--resume", "--no-progress", "--paper", "--version"]


def help_text(script, capsys):
    with pytest.raises(SystemExit) as exit_info:
        script.main(["--help"])
    assert exit_info.value.code == 0
    return " ".join(capsys.readouterr().out.split())   # argparse wraps lines where it likes


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda s: s.__name__.rsplit(".", 1)[1])
def test_help_lists_the_shared_flags_every_preset_and_the_defaults(script, capsys):
    text = help_text(script, capsys)
    shared = text[text.index("flags of every experiment"):]
    assert all(f"{flag} " in shared for flag in SHARED)
    assert all(name in shared for name in optim.preset_names())
    assert "(default: runs/" in shared and "(default: cpu)" in shared
    assert "the last digits of a run depend on it" in shared
    assert re.search(r"--paper .*about \d", shared)   # the full protocol's time


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda s: s.__name__.rsplit(".", 1)[1])
def test_version(script, capsys):
    with pytest.raises(SystemExit) as exit_info:
        script.main(["--version"])
    assert exit_info.value.code == 0 and capsys.readouterr().out.strip() == f"minibng {__version__}"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda s: s.__name__.rsplit(".", 1)[1])
def test_paper_switches_the_defaults_and_keeps_the_flags_given(script, tmp_path):
    quick = script.parse_args(["--out", str(tmp_path)])
    paper = script.parse_args(["--paper", "--out", str(tmp_path)])
    mine = script.parse_args(["--paper", "--epochs", "3", "--optimizers", "adam", "--seeds", "4,1", "--out",
                              str(tmp_path)])
    assert quick.epochs <= 8 and len(quick.optimizer_names) <= 4 and quick.seed_list == [0]
    assert paper.optimizer_names == list(script.PAPER_OPTIMIZERS if hasattr(script, "PAPER_OPTIMIZERS")
                                         else script.PAPER) and paper.limit is None
    assert paper.epochs is None or paper.epochs >= 50
    assert (mine.epochs, mine.optimizer_names, mine.seed_list, mine.limit) == (3, ["adam"], [4, 1], None)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda s: s.__name__.rsplit(".", 1)[1])
def test_limit_takes_all(script, tmp_path):
    assert script.parse_args(["--limit", "all", "--out", str(tmp_path)]).limit is None
    assert script.parse_args(["--limit", "12000", "--out", str(tmp_path)]).limit == 12000


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda s: s.__name__.rsplit(".", 1)[1])
def test_checking_the_flags_creates_nothing(script, tmp_path):
    """Only the run creates --out (and takes its lock); parsing good flags leaves the file system as it was."""
    script.parse_args(["--out", str(tmp_path / "fresh" / "run")])
    assert list(tmp_path.iterdir()) == []
