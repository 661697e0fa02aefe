"""Tables 1–2 and Figure 2 of the paper: CIFAR ResNets trained with SGD+momentum and Adam, plain, block-normalized
(NG), NGadap and clipped (CLIP).

    python -m minibng.examples.cifar_resnet                     # ResNet-20, SGDM vs SGDMNGadap, 5,000 images, 3 epochs
    python -m minibng.examples.cifar_resnet --paper --device gpu                            # Table 1, ResNet-20 column
    python -m minibng.examples.cifar_resnet --paper --depth 20,32,44,56,110 --seeds 0,1,2,3,4 --device gpu  # Table 1
    python -m minibng.examples.cifar_resnet --paper --dataset cifar-100 --depth 110 --device gpu            # Table 2
    python -m minibng.examples.cifar_resnet --dataset fashion-mnist --limit all --epochs 1   # without CIFAR

The paper's protocol (fb.resnet.torch's, which it used; ``--paper``): batch 128, 160 epochs of all 50,000
images, lr ×0.1 at epochs 81 and 122, weight decay 1e-4 for every optimizer, SGD with Nesterov momentum 0.9 and
dampening 0 at lr 0.1, Adam at lr 1e-3, NGadap α = 0.02, CLIP threshold 0.1; per-channel mean/std normalization;
pad 4, random 32×32 crop and random horizontal flip, on the device.  The default run keeps all of it but trains
two optimizers for 3 epochs on the first 5,000 training images (the test set is always whole).  MNIST-family
images are padded to 32×32 (one channel; no flip for MNIST's digits).  ``--holdout N`` trains on all but N
training images and reports the held-out ones as ``valid_*`` (the paper tuned on a 5,000-image holdout).

Writes ``DIR/metrics.csv`` (optimizer, depth, seed, epoch, train_loss, test_loss, test_accuracy, seconds),
``DIR/curves.png`` (Figure 2's layout: training and test objective per optimizer) and one folder per run with
its checkpoint; prints the final test error (%), mean ± std over seeds, beside the paper's Table 1/2.
"""
from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

import numpy as np

from .. import backend, models, optim
from ..data import Batches, Compose, RandomCropFlip, cifar, mnist, pad_to_32
from . import session
from .flags import Flag, UsageError, integer_list
from .report import epochs, print_table
from .script import Data, Script, cpu_threads, shared_defaults
from .settings import Settings

PAPER_OPTIMIZERS = ("sgdm", "sgdmng", "sgdmngadap", "sgdmclip", "adam", "adamng", "adamngadap", "adamclip")
DATASETS = ("cifar-10", "cifar-100", "mnist", "fashion-mnist")
SIZES = {"cifar-10": {"train": 50_000, "test": 10_000}, "cifar-100": {"train": 50_000, "test": 10_000},
         "mnist": {"train": 60_000, "test": 10_000}, "fashion-mnist": {"train": 60_000, "test": 10_000}}
COLUMNS = ["optimizer", "depth", "seed", "epoch", "train_loss", "test_loss", "test_accuracy", "seconds"]
SGD_PROTOCOL = {"nesterov": True, "dampening": 0.0, "weight_decay": 1e-4}   # lr 0.1, momentum 0.9: the presets
ADAM_PROTOCOL = {"weight_decay": 1e-4}        # §4.2: "Other setups are the same as the SGD"; lr 1e-3: the presets

# Final test error (%) as mean ± std over 5 runs, copied from the paper's text (arXiv 1707.04822, ICLR 2018
# submission, §4.2): Table 1 (CIFAR-10) and Table 2 (CIFAR-100); columns ResNet-20/32/44/56/110.
# (The paper's SGDM* row, He et al.'s own numbers, is left out.)
PAPER_DEPTHS = (20, 32, 44, 56, 110)
PAPER_TABLES = {
    "cifar-10": {
        "adam": [(9.14, .07), (8.33, .17), (7.794, .22), (7.33, .19), (6.75, .30)],
        "adamclip": [(10.18, .16), (9.18, .06), (8.89, .14), (9.24, .19), (9.96, .29)],
        "adamng": [(9.42, .20), (8.50, .17), (8.06, .20), (7.69, .19), (7.29, .08)],
        "adamngadap": [(8.52, .16), (7.62, .25), (7.28, .18), (7.04, .27), (6.71, .17)],
        "sgdm": [(7.93, .15), (7.15, .20), (7.09, .21), (7.34, .52), (7.07, .65)],
        "sgdmclip": [(9.03, .15), (8.44, .14), (8.55, .20), (8.30, .08), (8.35, .25)],
        "sgdmng": [(7.82, .26), (7.09, .13), (6.60, .21), (6.59, .23), (6.28, .22)],
        "sgdmngadap": [(7.71, .18), (6.90, .11), (6.43, .03), (6.19, .11), (5.87, .10)],
    },
    "cifar-100": {
        "adam": [(34.44, .33), (32.94, .16), (31.53, .13), (30.80, .30), (28.20, .14)],
        "adamclip": [(38.10, .48), (35.78, .20), (35.41, .19), (35.62, .39), (39.10, .35)],
        "adamng": [(35.06, .39), (33.78, .07), (32.26, .29), (31.86, .21), (29.87, .49)],
        "adamngadap": [(32.98, .52), (31.74, .07), (30.75, .60), (29.92, .26), (28.09, .46)],
        "sgdm": [(32.28, .16), (30.62, .36), (29.96, .66), (29.07, .41), (28.79, .63)],
        "sgdmclip": [(35.06, .37), (34.49, .49), (33.36, .36), (34.00, .96), (33.38, .73)],
        "sgdmng": [(32.46, .37), (31.16, .37), (30.05, .29), (29.42, .51), (27.49, .25)],
        "sgdmngadap": [(31.43, .35), (29.56, .25), (28.92, .28), (28.48, .19), (26.72, .39)],
    },
}


@dataclass(frozen=True, kw_only=True)
class CifarSettings(Settings):
    depths: tuple[int, ...]
    milestones: tuple[int, ...]
    holdout: int
    shortcut: str
    augment: str
    bn_update: int


def judge(flags, shared, world_size):
    """The ResNet depths (6n+2), the schedule, and the holdout: fewer images than --limit keeps, leaving one per
    rank at least."""
    depths = integer_list("--depth", flags.depth, 8)
    if any((d - 2) % 6 for d in depths):
        raise UsageError(f"--depth must be 6n+2 (20, 32, 44, 56, 110, …), got {flags.depth}")
    if flags.bn_update < 0:
        raise UsageError(f"--bn-update must be >= 0, got {flags.bn_update}")
    if not 0 <= flags.holdout <= shared["limit"] - world_size:
        raise UsageError(f"--holdout must be >= 0 and leave at least {world_size} of the {shared['limit']:,} training "
                         f"images (--limit) to train on, got {flags.holdout}")
    return CifarSettings(**shared, depths=depths, milestones=integer_list("--milestones", flags.milestones, 1),
                         holdout=flags.holdout, shortcut=flags.shortcut, augment=flags.augment,
                         bn_update=flags.bn_update)


def runs(settings):
    return [{"depth": d, "optimizer": o, "seed": s}
            for d, o, s in itertools.product(settings.depths, settings.optimizers, settings.seeds)]


def describe_runs(settings):
    return (f"{len(runs(settings))} × {epochs(settings.epochs)}: ResNet-{','.join(map(str, settings.depths))}, "
            f"{', '.join(settings.optimizers)}, seed {','.join(map(str, settings.seeds))}")


def load_data(settings):
    """Images (uint8, NCHW, 32×32) and labels split into train / valid (``--holdout``) / test, the per-channel
    normalization of the training images into the run's dtype, and the number of classes."""
    if settings.dataset.startswith("cifar"):
        data = cifar.load(settings.dataset, data_dir=settings.data_dir)
        train_x, test_x = data.train_images[:settings.limit], data.test_images
    else:
        data = mnist.load(settings.dataset, data_dir=settings.data_dir)
        train_x, test_x = pad_to_32(data.train_images[:settings.limit]), pad_to_32(data.test_images)
    train_y, test_y = data.train_labels[:settings.limit], data.test_labels
    keep = len(train_x) - settings.holdout
    order = np.random.default_rng(12345).permutation(len(train_x))  # the same split for every run
    splits = {"train": (train_x[order[:keep]], train_y[order[:keep]]), "test": (test_x, test_y)}
    if settings.holdout:
        splits["valid"] = (train_x[order[keep:]], train_y[order[keep:]])
    mean, std = cifar.channel_mean_std(splits["train"][0])   # normalize: (x/255 − μ_c)/σ_c
    normalize = functools.partial(cifar.normalize, mean=backend.to_device(mean, settings.device),
                                  std=backend.to_device(std, settings.device), dtype=settings.dtype)
    classes = 100 if settings.dataset == "cifar-100" else 10
    return Data(sets=(splits, normalize, classes),
                sizes={"train": len(data.train_images), "test": len(data.test_images)})


def batches(settings, sets, seed):
    """The seeded training batches (normalized, then augmented on the device) and the evaluation sets."""
    splits, normalize, _ = sets
    augment = {"auto": "crop" if settings.dataset == "mnist" else "crop-flip"}.get(settings.augment, settings.augment)
    steps = [normalize] + ([RandomCropFlip(4, flip=augment == "crop-flip", seed=seed)] if augment != "none" else [])
    train_batches = Batches(*splits["train"], settings.batch_size, shuffle=True, seed=seed, device=settings.device,
                            transform=Compose(*steps))
    evaluate = {name: Batches(*splits[name], 500, shuffle=False, device=settings.device, transform=normalize)
                for name in ("test", "valid") if name in splits}
    bn_rows = settings.bn_update * settings.batch_size  # the first rows of the (once permuted) training split
    bn_batches = Batches(splits["train"][0][:bn_rows], splits["train"][1][:bn_rows], settings.batch_size,
                         shuffle=False, device=settings.device, transform=normalize) if settings.bn_update else None
    return train_batches, evaluate, bn_batches


def protocol(name):
    """The paper's protocol for preset ``name`` (for lars, λ = 1e-4 goes into its trust ratio)."""
    if name.startswith("sgd") or name == "lars":
        return SGD_PROTOCOL
    return ADAM_PROTOCOL if name.startswith("adam") else {}


def train(experiment, sets, key):
    """Train one (depth, optimizer, seed)."""
    settings = experiment.settings
    train_batches, evaluate, bn_batches = batches(settings, sets, key["seed"])
    backend.manual_seed(key["seed"])
    splits, _, classes = sets
    model = models.resnet_cifar(key["depth"], num_classes=classes, shortcut=settings.shortcut,
                                in_channels=splits["train"][0].shape[1], input_grad=False, dtype=settings.dtype)
    model.to(settings.device)
    config = {"milestones": settings.milestones, "shortcut": settings.shortcut, "holdout": settings.holdout,
              "bn_update": settings.bn_update, "augment": settings.augment}
    experiment.fit(key, model, experiment.optimizer(key["optimizer"], model, **protocol(key["optimizer"])),
                   train_batches, evaluate, config=config, schedule=optim.MultiStep(settings.milestones, 0.1),
                   bn_batches=bn_batches)


def error_cell(errors, diverged):
    """'mean ± std' of final test errors in %, and ``diverged`` ('!' when a run diverged)."""
    if not errors:
        return "—"
    return (f"{np.mean(errors):.2f} ± {np.std(errors):.2f}" if len(errors) > 1 else f"{errors[0]:.2f}") + diverged


def paper_cell(dataset, name, depth):
    table = PAPER_TABLES.get(dataset, {})
    if name not in table or depth not in PAPER_DEPTHS:
        return "—"
    mean, std = table[name][PAPER_DEPTHS.index(depth)]
    return f"{mean:.2f} ± {std:.2f}"


def draw(experiment):
    """metrics.csv and Figure 2's curves (mean and range over seeds) from every finished epoch."""
    settings = experiment.settings
    columns = COLUMNS + (["valid_loss", "valid_accuracy"] if settings.holdout else [])
    return experiment.write_curves(experiment.rows(), columns,
                                   f"{settings.dataset}: ResNet, batch {settings.batch_size} (Figure 2's layout)",
                                   metrics=("train_loss", "test_loss", "test_accuracy"))


def table(experiment):
    settings = experiment.settings
    paper = settings.dataset in PAPER_TABLES
    columns = {f"ResNet-{d}": ("measured", d) for d in settings.depths}
    if paper:
        columns.update({f"paper {d}": ("paper", d) for d in settings.depths})

    def cell(name, column):
        kind, depth = column
        if kind == "paper":
            return paper_cell(settings.dataset, name, depth)
        finals, diverged = experiment.finals(depth=depth, optimizer=name)
        return error_cell([100 * (1 - h["test_accuracy"]) for h in finals], diverged)

    source = " beside the paper's Table " + ("1" if settings.dataset == "cifar-10" else "2") if paper else ""
    print_table(f"final test error % ({settings.dataset}, {epochs(settings.epochs)}, mean ± std over "
                f"{len(settings.seeds)} seed(s){source}; ! = diverged)", {name: name for name in settings.optimizers},
                columns, cell, width=16)


SCRIPT = Script(
    name="cifar_resnet", doc=__doc__, datasets=DATASETS, data_sizes=SIZES,
    limit_unit="training images",
    defaults={**shared_defaults("cifar_resnet"), "depth": "20", "milestones": "81,122", "holdout": 0,
              "shortcut": "A", "augment": "auto", "bn_update": 0, "optimizers": "sgdm,sgdmngadap", "epochs": 3,
              "batch_size": 128, "limit": 5000, "threads": cpu_threads()},
    paper={"optimizers": "paper", "epochs": 160, "limit": "all"}, paper_optimizers=PAPER_OPTIMIZERS,
    paper_help=f"Tables 1-2: optimizers {','.join(PAPER_OPTIMIZERS)}, 160 epochs of every image; for ResNet-20 and "
               "one seed about 5 h on an H200 GPU, 5 days on a 2-core CPU",
    own_flags=(Flag("--depth", "ResNet depth 6n+2, one or a comma list"),
               Flag("--milestones", "epochs at which lr is multiplied by 0.1 (a comma list)"),
               Flag("--holdout", "hold out N training images as a validation set", type=int),
               Flag("--shortcut", "A: zero-padding identity, B: 1×1 conv", choices=("A", "B")),
               Flag("--augment", "auto: pad-4 crop and flip, but no flip for mnist",
                    choices=("auto", "crop-flip", "crop", "none")),
               Flag("--bn-update", "after every epoch, re-estimate BatchNorm's statistics on N training batches "
                    "before evaluating (precise BN; 0: the running averages, as the paper)", type=int, metavar="N")),
    judge=judge, runs=runs, describe_runs=describe_runs, load_data=load_data, train=train, draw=draw, table=table)


def main(argv=None):
    session.run(SCRIPT, argv)


if __name__ == "__main__":
    main()
