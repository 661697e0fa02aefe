"""A small training run in a process of its own, for the fault cases that kill it or run two at once.

    python fault_worker.py OUT EPOCHS [--resume] [--kill-at-step N] [--kill-at-checkpoint K] [--kill-before-logs E]
                                      [--hold FILE]

--kill-at-step N        SIGKILL itself after the N-th optimizer step (mid-epoch)
--kill-at-checkpoint K  SIGKILL itself while writing the K-th checkpoint: its temporary file is complete, the rename
                        has not happened
--kill-before-logs E    SIGKILL itself after the checkpoint of epoch E was renamed into place, before its logs
--hold FILE             after the first step, create FILE.started and wait (at most 60 s) until FILE exists

``build_trainer(out, epochs)`` is the same run in the test's own process, the reference an interrupted run must
reproduce exactly.
"""
import argparse
import os
import signal
import sys
import time

import minibng as mb
from minibng import nn, optim
from minibng.data import Batches, synthetic
from minibng.train import Trainer

CONFIG = {"hidden": 16, "lr": 0.02, "seed": 0, "batch_size": 32}


def build_trainer(out, epochs, config=None, callbacks=()):
    """Adam-NG on 300 blobs, 3 classes, dropout (a random stream to restore), a schedule (an lr to restore)."""
    config = {**CONFIG, **(config or {})}
    x, y = synthetic.blobs(n=300, features=8, classes=3, seed=0)
    mb.manual_seed(config["seed"])
    model = nn.Sequential(nn.Linear(8, config["hidden"]), nn.Tanh(), nn.Dropout(0.2), nn.Linear(config["hidden"], 3))
    opt = optim.create("adamng", model, lr=config["lr"])
    train = Batches(x, y, config["batch_size"], shuffle=True, seed=config["seed"])
    test = Batches(x[:100], y[:100], 50, shuffle=False)
    return Trainer(model, nn.SoftmaxCrossEntropy(), opt, train, epochs, evaluate={"test": test},
                   schedule=optim.MultiStep([2], 0.5), out=out, config={**config, "epochs": epochs},
                   progress=False, callbacks=list(callbacks))


def _die():
    os.kill(os.getpid(), signal.SIGKILL)


class _AtStep:
    def __init__(self, step, action):
        self.step, self.action, self.seen = step, action, 0

    def on_step_end(self, trainer):
        self.seen += 1
        if self.seen == self.step:
            self.action()

    def on_epoch_end(self, trainer, metrics):
        pass


def _hold(path):
    open(path + ".started", "w").close()
    deadline = time.monotonic() + 60
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.02)


def _kill_at_checkpoint(k):
    real_replace, calls = os.replace, []

    def replace(src, dst):
        if str(dst).endswith("checkpoint.npz"):
            calls.append(dst)
            if len(calls) == k:
                _die()
        return real_replace(src, dst)

    os.replace = replace


def _kill_before_logs(epoch):
    real_write_logs = Trainer._write_logs

    def write_logs(self):
        if len(self.history) == epoch:
            _die()
        real_write_logs(self)

    Trainer._write_logs = write_logs


def main(argv):
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("epochs", type=int)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--kill-at-step", type=int)
    p.add_argument("--kill-at-checkpoint", type=int)
    p.add_argument("--kill-before-logs", type=int)
    p.add_argument("--hold")
    args = p.parse_args(argv)
    callbacks = []
    if args.kill_at_step:
        callbacks.append(_AtStep(args.kill_at_step, _die))
    if args.hold:
        callbacks.append(_AtStep(1, lambda: _hold(args.hold)))
    if args.kill_at_checkpoint:
        _kill_at_checkpoint(args.kill_at_checkpoint)
    if args.kill_before_logs:
        _kill_before_logs(args.kill_before_logs)
    build_trainer(args.out, args.epochs, callbacks=callbacks).fit(resume=args.resume)


if __name__ == "__main__":
    main(sys.argv[1:])
