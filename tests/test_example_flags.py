"""The four experiment scripts share one set of flags, meaning the same thing in each, with their defaults shown;
judging them reads nothing, makes nothing, and gives one Settings value holding what the runs will use."""
import dataclasses
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minibng import __version__, optim
from minibng.examples import cifar_resnet, mnist_mlp, out_folder, ptb_lstm, rt_cnn, settings
from minibng.examples.flags import UsageError, integer_list, name_list
from minibng.examples.script import cpu_threads

SCRIPTS = [mnist_mlp, cifar_resnet, ptb_lstm, rt_cnn]
SHARED = ["--dataset", "--optimizers", "--epochs", "--seeds", "--lr", "--batch-size", "--limit", "--threads",
          "--device", "--dtype", "--data-dir", "--out", "--resume", "--no-progress", "--paper", "--version"]
names = pytest.mark.parametrize("script", SCRIPTS, ids=lambda s: s.__name__.rsplit(".", 1)[1])


def judge(script, *argv, world_size=1, cores=8):
    return settings.judge(script.SCRIPT, list(argv), world_size, cores=cores)


def help_text(script, capsys):
    with pytest.raises(SystemExit) as exit_info:
        script.main(["--help"])
    assert exit_info.value.code == 0
    return " ".join(capsys.readouterr().out.split())   # argparse wraps lines where it likes


@names
def test_help_lists_the_shared_flags_every_preset_and_the_defaults(script, capsys):
    text = help_text(script, capsys)
    shared = text[text.index("flags of every experiment"):]
    assert all(f"{flag} " in shared for flag in SHARED)
    assert all(name in shared for name in optim.preset_names())
    assert f"(default: runs/{script.SCRIPT.name})" in shared and "(default: cpu)" in shared
    assert "(default: float32)" in shared and "the last digits of a run depend on it" in shared
    assert re.search(r"--paper .*about \d", shared)   # the full protocol's time


@names
def test_version(script, capsys):
    with pytest.raises(SystemExit) as exit_info:
        script.main(["--version"])
    assert exit_info.value.code == 0 and capsys.readouterr().out.strip() == f"minibng {__version__}"


@names
def test_paper_switches_the_defaults_and_keeps_the_flags_given(script):
    quick, paper = judge(script), judge(script, "--paper")
    mine = judge(script, "--paper", "--epochs", "3", "--optimizers", "adam", "--seeds", "4,1")
    whole = script.SCRIPT.data_sizes[script.SCRIPT.datasets[0]]["train"]
    assert quick.epochs <= 8 and len(quick.optimizers) <= 4 and quick.seeds == (0,)
    assert paper.optimizers == script.SCRIPT.paper_optimizers and paper.limit == whole
    assert paper.epochs is None or paper.epochs >= 50
    assert (mine.epochs, mine.optimizers, mine.seeds, mine.limit) == (3, ("adam",), (4, 1), whole)


@names
def test_limit_is_recorded_as_used(script):
    """'all' and more than the data set holds both use (and record) the whole training set, and the latter says so;
    a smaller number is taken as it is."""
    whole = script.SCRIPT.data_sizes[script.SCRIPT.datasets[0]]["train"]
    assert judge(script, "--limit", "all").limit == whole and not judge(script, "--limit", "all").notes
    more = judge(script, "--limit", str(whole + 1000))
    assert more.limit == whole and more.recorded()["limit"] == whole
    assert f"--limit {whole + 1000:,} is more than the {whole:,}" in more.notes[0]
    assert judge(script, "--limit", "9000").limit == 9000


@names
def test_threads_are_capped_at_the_usable_cores_with_a_note(script):
    capped = judge(script, "--threads", "64", cores=2)
    assert capped.threads == 2 and "--threads 64 is more than the 2 core(s)" in capped.notes[-1]
    assert judge(script, "--threads", "2", cores=2).notes == ()


def test_the_default_threads_of_large_matrices_share_the_usable_cores(monkeypatch):
    """cifar_resnet's and ptb_lstm's --threads default: half the cores settings.usable_cores counts, 1 to 4."""
    for cores, threads in ((1, 1), (2, 1), (6, 3), (64, 4)):
        monkeypatch.setattr("minibng.examples.script.usable_cores", lambda cores=cores: cores)
        assert cpu_threads() == threads


def test_a_list_of_names_names_what_it_lists():
    with pytest.raises(UsageError, match=r"unknown preset\(s\) \['sgdx'\] in --baselines; choose from sgd, adam"):
        name_list("--baselines", "adam,sgdx", ("sgd", "adam"), "preset")
    assert name_list("--baselines", "adam,sgd", ("sgd", "adam"), "preset") == ("adam", "sgd")


@names
def test_the_dtype_is_a_setting_of_every_run(script):
    assert judge(script).dtype == "float32" and judge(script, "--dtype", "float64").recorded()["dtype"] == "float64"
    with pytest.raises(UsageError, match="--dtype: invalid choice: 'float16'"):
        judge(script, "--dtype", "float16")


@names
def test_judging_creates_nothing(script, tmp_path):
    """Only the session creates --out (and takes its lock) once its data is loaded: judging the flags and the
    folder leaves the file system as it was."""
    chosen = judge(script, "--out", str(tmp_path / "fresh" / "run"))
    assert out_folder.judge(chosen) == out_folder.Judgement(exists=False, checkpoints=())
    assert list(tmp_path.iterdir()) == []


@names
def test_settings_are_one_frozen_value(script):
    chosen = judge(script)
    with pytest.raises(dataclasses.FrozenInstanceError):
        chosen.epochs = 99
    recorded = chosen.recorded()
    assert recorded["script"] == script.SCRIPT.name and "out" not in recorded and "device" not in recorded
    assert chosen.command == ("python", "-m", f"minibng.examples.{script.SCRIPT.name}")


@given(values=st.lists(st.integers(0, 10**6), min_size=1, max_size=8))
def test_a_comma_list_is_taken_whole_or_refused(values):
    """Every comma list of integers parses to exactly its items when they are distinct, and is refused, naming the
    flag, when one repeats or an item is empty: never an item silently dropped or a run trained twice."""
    text = ",".join(map(str, values))
    if len(set(values)) == len(values):
        assert integer_list("--seeds", text, 0) == tuple(values)
    else:
        with pytest.raises(UsageError, match="--seeds .* more than once"):
            integer_list("--seeds", text, 0)
    for gap in range(len(values) + 1):   # an empty item anywhere: first, between two, last
        holey = ",".join([*map(str, values[:gap]), "", *map(str, values[gap:])])
        with pytest.raises(UsageError, match="--seeds must be a comma list without empty items"):
            integer_list("--seeds", holey, 0)
