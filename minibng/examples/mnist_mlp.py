"""Figure 1 of the paper: deep sigmoid MLPs on MNIST, block-normalized optimizers against their plain versions.

    python -m minibng.examples.mnist_mlp                       # depth 18, Adam vs AdamNG, 8 epochs (about a minute)
    python -m minibng.examples.mnist_mlp --device gpu
    python -m minibng.examples.mnist_mlp --paper               # Figure 1: depths 6/12/18, six optimizers
    python -m minibng.examples.mnist_mlp --depth 12 --optimizers adam,adamng --epochs 3
    python -m minibng.examples.mnist_mlp --seeds 0,1,2         # three runs each: mean and spread

Writes ``DIR/metrics.csv`` (optimizer, depth, seed, epoch, train_loss, test_loss, test_accuracy, seconds),
``DIR/curves.png`` (Figure 1's layout; with several seeds the mean and a band from the lowest to the highest
seed), ``DIR/gradnorms.png`` (each layer's gradient norm ‖g^i‖ and step ‖Δx^i‖ 30 times an epoch, deepest
network, first seed), ``DIR/experiment.json`` (the settings) and
one folder per run with its checkpoint and logs; ``--resume`` continues every run from its last finished epoch.
"""
from __future__ import annotations

import itertools
import os
from dataclasses import dataclass

import numpy as np

from .. import backend, models, plot
from ..data import Batches, mnist
from ..train import BlockStepRecorder
from . import session
from .flags import Flag, integer_list
from .report import epochs, print_table
from .script import Data, Script, shared_defaults
from .settings import Settings

PAPER_OPTIMIZERS = ("sgdm", "sgdmng", "adagrad", "adagradng", "adam", "adamng")
PAPER_EPOCHS = {6: 20, 12: 30, 18: 50}  # Figure 1's x axes
COLUMNS = ["optimizer", "depth", "seed", "epoch", "train_loss", "test_loss", "test_accuracy", "seconds"]
SIZES = {"train": 60_000, "test": 10_000}
POINTS_PER_EPOCH = 30   # of gradnorms.png: every 20 steps of MNIST's 600, fine enough to show the escape


@dataclass(frozen=True, kw_only=True)
class MnistSettings(Settings):
    depths: tuple[int, ...]

    def epochs_of(self, depth):
        """The epochs of a run at ``depth``: --epochs, or Figure 1's for that depth."""
        return self.epochs or PAPER_EPOCHS.get(depth, 20)


def judge(flags, shared, world_size):
    return MnistSettings(**shared, depths=integer_list("--depth", flags.depth, 2))


def runs(settings):
    return [{"depth": d, "optimizer": o, "seed": s}
            for d, o, s in itertools.product(settings.depths, settings.optimizers, settings.seeds)]


def describe_runs(settings):
    count = len(runs(settings))
    per_run = settings.epochs or "/".join(str(settings.epochs_of(d)) for d in settings.depths)
    return (f"{count} × {epochs(per_run)}: depth {','.join(map(str, settings.depths))}, "
            f"{', '.join(settings.optimizers)}, seed {','.join(map(str, settings.seeds))}")


def load_data(settings):
    """Pixels scaled to [0, 1] in the run's dtype and flattened to 784 features (host arrays; each run moves them to
    the device once)."""
    data = mnist.load(settings.dataset, data_dir=settings.data_dir)
    dtype = np.dtype(settings.dtype)
    scale = lambda images: (images.reshape(len(images), 28 * 28) / dtype.type(255)).astype(dtype)  # noqa: E731
    train = scale(data.train_images[:settings.limit]), data.train_labels[:settings.limit].astype(np.int64)
    test = scale(data.test_images), data.test_labels.astype(np.int64)
    return Data(sets=(train, test), sizes={"train": len(data.train_images), "test": len(data.test_images)})


def train(experiment, sets, key):
    """Train one (depth, optimizer, seed): every optimizer of a seed starts from the same weights and sees the same
    data order."""
    settings, (train_set, test_set) = experiment.settings, sets
    depth, name, seed = key["depth"], key["optimizer"], key["seed"]
    train_batches = Batches(*train_set, settings.batch_size, shuffle=True, seed=seed, device=settings.device)
    test = Batches(*test_set, 1000, shuffle=False, device=settings.device)
    backend.manual_seed(seed)
    model = models.mlp(depth, input_grad=False, dtype=settings.dtype).to(settings.device)
    every = max(1, len(train_batches) // POINTS_PER_EPOCH)
    recorder = experiment.recorders[tuple(key.items())] = BlockStepRecorder(every=every)
    experiment.fit(key, model, experiment.optimizer(name, model), train_batches, {"test": test},
                   epochs=settings.epochs_of(depth), callbacks=[recorder])


def draw(experiment):
    """metrics.csv, Figure 1's curves, and for the largest depth and the first seed each layer's gradient norm and step
    POINTS_PER_EPOCH times an epoch; returns the names written."""
    settings = experiment.settings
    written = experiment.write_curves(experiment.rows(), COLUMNS, f"{settings.dataset}: sigmoid MLP, batch "
                                      f"{settings.batch_size}", metrics=("train_loss", "test_loss"))
    deepest, first_seed = max(settings.depths), settings.seeds[0]
    keys = {name: {"depth": deepest, "optimizer": name, "seed": first_seed} for name in settings.optimizers}
    drawn = {name: recorder for name, key in keys.items()
             if (recorder := experiment.recorder(**key)) is not None and recorder.records}   # a diverged run's too
    if drawn:
        every = next(iter(drawn.values())).every
        plot.block_steps(drawn, os.path.join(settings.out, "gradnorms.png"),
                         title=f"depth {deepest}, seed {first_seed}: each layer's $\\|g^i\\|$ and step "
                               f"$\\|\\Delta x^i\\|$, every {every} steps")
        written.append("gradnorms.png")
    return written


def table(experiment):
    settings = experiment.settings
    one_seed = len(settings.seeds) == 1

    def cell(name, depth):
        finals, diverged = experiment.finals(depth=depth, optimizer=name)
        losses = [h["train_loss"] for h in finals]
        if not finals:
            return "—" + diverged
        if one_seed:
            return f"{losses[0]:.3f}/{finals[0]['test_loss']:.3f}" + diverged
        return f"{np.mean(losses):.3f} [{min(losses):.3f}, {max(losses):.3f}]" + diverged

    what = ("training/test objective" if one_seed
            else f"training objective, mean [lowest, highest] over seeds {','.join(map(str, settings.seeds))}")
    print_table(f"final {what} ({settings.dataset}; ! = diverged, stopped early)",
                {name: name for name in settings.optimizers}, {f"depth {d}": d for d in settings.depths}, cell,
                width=16 if one_seed else 26)


SCRIPT = Script(
    name="mnist_mlp", doc=__doc__, datasets=("mnist", "fashion-mnist"),
    data_sizes={"mnist": SIZES, "fashion-mnist": SIZES}, limit_unit="training images",
    defaults={**shared_defaults("mnist_mlp"), "depth": "18", "optimizers": "adam,adamng", "epochs": 8,
              "batch_size": 100, "limit": "all", "threads": 1},
    paper={"depth": "6,12,18", "optimizers": "paper", "epochs": None}, paper_optimizers=PAPER_OPTIMIZERS,
    paper_help="Figure 1: depths 6,12,18, six optimizers, 20/30/50 epochs by depth (or --epochs); about 20 min on a "
               "2-core CPU",
    own_flags=(Flag("--depth", "number of weight layers, one or a comma list"),),
    judge=judge, runs=runs, describe_runs=describe_runs, load_data=load_data, train=train, draw=draw, table=table)


def main(argv=None):
    session.run(SCRIPT, argv)


if __name__ == "__main__":
    main()
