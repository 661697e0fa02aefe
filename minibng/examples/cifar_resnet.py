"""Tables 1–2 and Figure 2 of the paper: CIFAR ResNets trained with SGD+momentum and Adam, plain, block-normalized
(NG), NGadap and clipped (CLIP).

    python -m minibng.examples.cifar_resnet --depth 20 --optimizers sgdm,sgdmngadap --device gpu
    python -m minibng.examples.cifar_resnet --depth 20,32,44,56,110 --seeds 5 --device gpu      # Table 1
    python -m minibng.examples.cifar_resnet --dataset cifar-100 --depth 110 --seeds 5 --device gpu   # Table 2
    python -m minibng.examples.cifar_resnet --dataset fashion-mnist --epochs 1 --optimizers sgdm   # on a CPU

The paper's protocol (fb.resnet.torch's, which it used) is the default: batch 128, 160 epochs, lr ×0.1 at
epochs 81 and 122, weight decay 1e-4 for every optimizer, SGD with Nesterov momentum 0.9 and dampening 0 at
lr 0.1, Adam at lr 1e-3, NGadap α = 0.02, CLIP threshold 0.1; per-channel mean/std normalization; pad 4,
random 32×32 crop and random horizontal flip, on the device.  MNIST-family images are padded to 32×32
(one channel; no flip for MNIST's digits).  ``--holdout N`` trains on all but N training images and reports the
held-out ones as ``valid_*`` (the paper tuned on a 5,000-image holdout).

Writes ``DIR/metrics.csv`` (optimizer, depth, seed, epoch, train_loss, test_loss, test_accuracy, seconds),
``DIR/curves.png`` (Figure 2's layout: training and test objective per optimizer) and one folder per run with
its checkpoint; prints the final test error (%), mean ± std over seeds, beside the paper's Table 1/2.
"""
from __future__ import annotations

import os

import numpy as np

from .. import backend, models, nn, optim, plot
from ..checkpoint import write_table
from ..data import Batches, Compose, RandomCropFlip, cifar, mnist, pad_to_32
from .common import (add_common_flags, load_or_exit, locked_output, optimizer_list, parser, print_table,
                     run_folder, train_run)

PAPER_OPTIMIZERS = ["sgdm", "sgdmng", "sgdmngadap", "sgdmclip", "adam", "adamng", "adamngadap", "adamclip"]
DATASETS = ["cifar-10", "cifar-100", "mnist", "fashion-mnist"]
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


def parse_args(argv=None):
    p = parser("cifar_resnet", __doc__)
    p.add_argument("--depth", default="20", help="ResNet depth 6n+2, one or a comma list (default 20)")
    p.add_argument("--dataset", choices=DATASETS, default="cifar-10")
    p.add_argument("--optimizers", default="paper",
                   help=f"comma list of preset names (lars too), or 'paper' (default) for {','.join(PAPER_OPTIMIZERS)}")
    p.add_argument("--seeds", type=int, default=1, help="runs per configuration, seeds 0..N-1 (the paper: 5)")
    p.add_argument("--epochs", type=int, default=160)
    p.add_argument("--milestones", default="81,122", help="epochs at which lr is multiplied by 0.1 (default 81,122)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--holdout", type=int, default=0, help="hold out N training images as a validation set")
    p.add_argument("--shortcut", choices=["A", "B"], default="A", help="A: zero-padding identity (default), B: 1×1 conv")
    p.add_argument("--augment", choices=["auto", "crop-flip", "crop", "none"], default="auto",
                   help="auto: pad-4 crop and flip, but no flip for mnist")
    p.add_argument("--bn-update", type=int, default=0, metavar="N",
                   help="after every epoch, re-estimate BatchNorm's statistics on N training batches before "
                        "evaluating (precise BN; default 0: the running averages, as the paper)")
    p.add_argument("--limit", type=int, default=None, help="use the first N training and N test images (quick trials)")
    add_common_flags(p, "runs/cifar_resnet")
    args = p.parse_args(argv)
    args.depths = [int(d) for d in str(args.depth).split(",")]
    bad = [d for d in args.depths if d < 8 or (d - 2) % 6]
    if bad:
        p.error(f"--depth must be 6n+2 (20, 32, 44, 56, 110, …), got {bad}")
    args.optimizer_names = optimizer_list(p, args.optimizers, PAPER_OPTIMIZERS)
    args.milestone_list = [int(m) for m in args.milestones.split(",") if m]
    if args.seeds < 1:
        p.error("--seeds must be >= 1")
    if args.bn_update < 0:
        p.error("--bn-update must be >= 0")
    return args


class _Normalize:
    """uint8 NCHW batch → (x/255 − μ_c)/σ_c in float32, on the batch's device."""

    def __init__(self, mean, std):
        self.mean, self.std = mean, std

    def __call__(self, images):
        return cifar.normalize(images, self.mean, self.std)


def load_data(args):
    """Images (uint8, NCHW, 32×32) and labels split into train / valid (``--holdout``) / test, the per-channel
    normalization of the training images, and the number of classes."""
    if args.dataset.startswith("cifar"):
        data = load_or_exit(cifar.load, args.dataset, data_dir=args.data_dir)
        train_x, test_x = data.train_images, data.test_images
    else:
        data = load_or_exit(mnist.load, args.dataset, data_dir=args.data_dir)
        train_x, test_x = pad_to_32(data.train_images), pad_to_32(data.test_images)
    train_y, test_y = data.train_labels[:args.limit], data.test_labels[:args.limit]
    train_x, test_x = train_x[:args.limit], test_x[:args.limit]
    if not 0 <= args.holdout < len(train_x):
        raise SystemExit(f"error: --holdout {args.holdout} must be below the {len(train_x)} training images")
    keep = len(train_x) - args.holdout
    order = np.random.default_rng(12345).permutation(len(train_x))  # the same split for every run
    splits = {"train": (train_x[order[:keep]], train_y[order[:keep]]), "test": (test_x, test_y)}
    if args.holdout:
        splits["valid"] = (train_x[order[keep:]], train_y[order[keep:]])
    mean, std = cifar.channel_mean_std(splits["train"][0])
    normalize = _Normalize(backend.to_device(mean, args.device), backend.to_device(std, args.device))
    return splits, normalize, 100 if args.dataset == "cifar-100" else 10


def batches(args, data, seed):
    """The seeded training batches (normalized, then augmented on the device) and the evaluation sets."""
    splits, normalize, _ = data
    augment = {"auto": "crop" if args.dataset == "mnist" else "crop-flip"}.get(args.augment, args.augment)
    steps = [normalize] + ([RandomCropFlip(4, flip=augment == "crop-flip", seed=seed)] if augment != "none" else [])
    train = Batches(*splits["train"], args.batch_size, shuffle=True, seed=seed, device=args.device,
                    transform=Compose(*steps))
    evaluate = {name: Batches(*splits[name], 500, shuffle=False, device=args.device, transform=normalize)
                for name in ("test", "valid") if name in splits}
    bn_rows = args.bn_update * args.batch_size  # the first rows of the (once permuted) training split
    bn_batches = Batches(splits["train"][0][:bn_rows], splits["train"][1][:bn_rows], args.batch_size,
                         shuffle=False, device=args.device, transform=normalize) if args.bn_update else None
    return train, evaluate, bn_batches


def make_optimizer(name, model):
    """The preset ``name`` under the paper's protocol (for lars, λ = 1e-4 goes into its trust ratio)."""
    protocol = SGD_PROTOCOL if name.startswith("sgd") or name == "lars" else ADAM_PROTOCOL if name.startswith("adam") else {}
    return optim.create(name, model, **protocol)


def run_one(args, data, depth, name, seed):
    """Train one (depth, optimizer, seed); returns (history, note)."""
    train, evaluate, bn_batches = batches(args, data, seed)
    backend.manual_seed(seed)
    channels = data[0]["train"][0].shape[1]
    model = models.resnet_cifar(depth, num_classes=data[2], shortcut=args.shortcut, in_channels=channels,
                                input_grad=False)
    model.to(args.device)
    opt = make_optimizer(name, model)
    config = {"dataset": args.dataset, "depth": depth, "optimizer": name, "seed": seed, "epochs": args.epochs,
              "batch_size": args.batch_size, "lr": opt.lr, "milestones": args.milestone_list,
              "shortcut": args.shortcut, "holdout": args.holdout, "limit": args.limit or 0,
              "bn_update": args.bn_update, "augment": args.augment}
    return train_run(model, nn.SoftmaxCrossEntropy(), opt, train, args.epochs, evaluate,
                     run_folder(args.out, f"depth{depth}", name, f"seed{seed}"), config, args,
                     f"ResNet-{depth} {name} seed {seed}", schedule=optim.MultiStep(args.milestone_list, 0.1),
                     bn_batches=bn_batches)


def mean_over_seeds(rows, metrics):
    """One row per (optimizer, depth, epoch) with each metric averaged over the seeds (for the curves)."""
    groups = {}
    for row in rows:
        groups.setdefault((row["optimizer"], row["depth"], row["epoch"]), []).append(row)
    return [{"optimizer": o, "depth": d, "epoch": e, **{m: float(np.mean([r[m] for r in rs])) for m in metrics}}
            for (o, d, e), rs in groups.items()]


def error_cell(errors, noted):
    """'mean ± std' of final test errors in %, '!' when a run diverged."""
    if not errors:
        return "—"
    text = f"{np.mean(errors):.2f} ± {np.std(errors):.2f}" if len(errors) > 1 else f"{errors[0]:.2f}"
    return text + ("!" if noted else "")


def paper_cell(dataset, name, depth):
    table = PAPER_TABLES.get(dataset, {})
    if name not in table or depth not in PAPER_DEPTHS:
        return "—"
    mean, std = table[name][PAPER_DEPTHS.index(depth)]
    return f"{mean:.2f} ± {std:.2f}"


def main(argv=None):
    args = parse_args(argv)
    with locked_output(args.out):
        experiment(args)


def experiment(args):
    """Every (depth, optimizer, seed) run, then the table and the figure."""
    data = load_data(args)
    rows, finals, notes = [], {}, {}
    for depth in args.depths:
        for name in args.optimizer_names:
            for seed in range(args.seeds):
                history, note = run_one(args, data, depth, name, seed)
                notes[depth, name, seed] = note
                rows += [{"optimizer": name, "depth": depth, "seed": seed, **h} for h in history]
                if history:
                    h = history[-1]
                    finals.setdefault((depth, name), []).append(100 * (1 - h["test_accuracy"]))
                    print(f"ResNet-{depth} {name:<10} seed {seed} epoch {h['epoch']:>3}  train {h['train_loss']:.4f}  "
                          f"test {h['test_loss']:.4f}  accuracy {h['test_accuracy']:.4f}  {h['seconds']:.0f} s "
                          f"{note or ''}", flush=True)
    columns = COLUMNS + (["valid_loss", "valid_accuracy"] if args.holdout else [])
    write_table(os.path.join(args.out, "metrics.csv"), rows, columns)
    if rows:
        metrics = ("train_loss", "test_loss", "test_accuracy")
        plot.curves(mean_over_seeds(rows, metrics), os.path.join(args.out, "curves.png"), metrics=metrics,
                    title=f"{args.dataset}: ResNet, batch {args.batch_size}, {args.seeds} seed(s) (Figure 2's layout)")
    paper = args.dataset in PAPER_TABLES
    columns = [f"ResNet-{d}" for d in args.depths] + ([f"paper {d}" for d in args.depths] if paper else [])

    def cell(name, column):
        depth = int(column.split("-" if column.startswith("ResNet") else " ")[1])
        if column.startswith("paper"):
            return paper_cell(args.dataset, name, depth)
        noted = any(notes.get((depth, name, s)) for s in range(args.seeds))
        return error_cell(finals.get((depth, name), []), noted)

    source = " beside the paper's Table " + ("1" if args.dataset == "cifar-10" else "2") if paper else ""
    print_table(f"final test error % ({args.dataset}, {args.epochs} epochs, mean ± std over {args.seeds} seed(s)"
                f"{source}; ! = diverged)", args.optimizer_names, columns, cell, width=16)
    print(f"\nwrote {os.path.join(args.out, 'metrics.csv')} and curves.png")


if __name__ == "__main__":
    main()
