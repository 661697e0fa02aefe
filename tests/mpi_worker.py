"""Small data-parallel runs for tests/test_distributed.py, started by ``mpiexec`` (tests/support.py's ``mpiexec``).

    python mpi_worker.py equivalence OUT        every preset, float64, synchronized BatchNorm: OUT/<preset>-rank<r>.npz
    python mpi_worker.py train OUT EPOCHS [--resume]   a run with dropout into the folder OUT (rank 0 writes it)
    python mpi_worker.py fail STEP              rank 1 raises after optimizer step STEP
    python mpi_worker.py hang STEP              rank 1 stops answering after optimizer step STEP
    python mpi_worker.py nan STEP OUT           rank 1's weights become infinite after optimizer step STEP; every
                                                rank writes the NonFiniteError it stopped with to OUT/rank<r>.txt
    python mpi_worker.py kill STEP              rank 1 is killed (SIGKILL) after optimizer step STEP

``equivalence_trainer(batch_size)`` is the run the equivalence test repeats in its own process (a world of one)
with the global batch.
"""
import os
import signal
import sys
import time

import numpy as np

import minibng as mb
from minibng import distributed, nn, optim
from minibng.data import Batches, synthetic
from minibng.train import NonFiniteError, Trainer

SAMPLES = 69  # with 2 ranks of batch 8, the last global batch of 5 rows splits into 2 + 3: weights 0.8 and 1.2


def equivalence_trainer(name, batch_size, epochs=2):
    """``name`` on a float64 MLP with BatchNorm and no dropout (nothing random but the data order).  The layer before
    BatchNorm has no bias: its gradient would be rounding noise, which AdaGrad's first step blows up to ±lr."""
    x, y = synthetic.blobs(n=SAMPLES, features=6, classes=3, seed=1)
    mb.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8, bias=False, dtype="float64"), nn.BatchNorm1d(8, dtype="float64"), nn.Tanh(),
                          nn.Linear(8, 3, dtype="float64"))
    opt = optim.create(name, model)
    train = Batches(x.astype(np.float64), y, batch_size, shuffle=True, seed=3)
    test = Batches(x[:31].astype(np.float64), y[:31], 10, shuffle=False)
    return Trainer(model, nn.SoftmaxCrossEntropy(), opt, train, epochs, evaluate={"test": test},
                   schedule=optim.MultiStep([2], 0.5), progress=False)


def result(trainer):
    """The run's final flat parameters, BatchNorm statistics and metrics (no wall times)."""
    buffers = [getattr(m, b) for m in trainer.model.modules() for b in m._buffers]
    metrics = [[h["train_loss"], h["test_loss"], h["test_accuracy"], *h["block_norms"]] for h in trainer.history]
    return {"x": mb.backend.asnumpy(trainer.optimizer.flat.x), "buffers": np.concatenate(buffers),
            "metrics": np.array(metrics)}


def train_trainer(out, epochs, callbacks=()):
    """Adam-NG with dropout (every rank draws its own masks) on 300 blobs, batch 16 per rank."""
    x, y = synthetic.blobs(n=300, features=8, classes=3, seed=0)
    mb.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Dropout(0.3), nn.Linear(16, 3))
    opt = optim.create("adamng", model, lr=0.02)
    return Trainer(model, nn.SoftmaxCrossEntropy(), opt, Batches(x, y, 16, seed=0), epochs,
                   evaluate={"test": Batches(x[:100], y[:100], 25, shuffle=False)}, out=out,
                   config={"epochs": epochs}, progress=False, callbacks=list(callbacks))


class AtStep:
    def __init__(self, step, action):
        self.step, self.action, self.seen = step, action, 0

    def on_step_end(self, trainer):
        self.seen += 1
        if self.seen == self.step and trainer.world.rank == 1:
            self.action()


def _raise():
    raise RuntimeError("rank 1 failed on purpose")


def _poison(trainer):
    return lambda: trainer.model[0].weight.data.fill(np.inf)


def main(argv):
    world = distributed.world()
    command = argv[0]
    if command == "equivalence":
        for name in optim.preset_names():
            trainer = equivalence_trainer(name, 8)
            trainer.fit()
            np.savez(f"{argv[1]}/{name}-rank{world.rank}.npz", **result(trainer))
    elif command == "train":
        train_trainer(argv[1], int(argv[2])).fit(resume="--resume" in argv)
    elif command in ("fail", "hang", "kill"):
        action = {"fail": _raise, "hang": lambda: time.sleep(120),
                  "kill": lambda: os.kill(os.getpid(), signal.SIGKILL)}[command]
        train_trainer(None, 3, [AtStep(int(argv[1]), action)]).fit()
    elif command == "nan":
        trainer = train_trainer(None, 3)
        trainer.callbacks.append(AtStep(int(argv[1]), _poison(trainer)))
        try:
            trainer.fit()
        except NonFiniteError as e:
            with open(f"{argv[2]}/rank{world.rank}.txt", "w") as f:
                f.write(str(e))
    print(f"rank {world.rank} of {world.size} done", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
