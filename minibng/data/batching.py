"""Shuffled mini-batches of a data set that is moved to the device once.

``Batches(x, y, batch_size)`` copies x and y to ``device`` when it is built (one host-to-device transfer per
run), then every epoch e visits the samples in the order π_e, a permutation of {0, …, N−1} drawn from a NumPy
generator seeded with (seed, e) and moved to the device; batch k is x[π_e[kB : (k+1)B]] — one gather on the
device.  Because π_e depends only on (seed, e), the position (epoch, next batch) is the whole iteration state:
``state()`` returns it as plain ints (plus the transform's own state, e.g. an augmentation's random stream), a
checkpoint stores it in an ``.npz`` without pickle, and ``set_state()`` makes a resumed run see exactly the
batches the uninterrupted run would have seen.  The permutation is the same on every device, so a seed gives
the same batches on CPU and GPU.

Data-parallel (``shard(r, N)``, called by the Trainer under MPI with N = ``world_size``, the number of ranks):
global batch k holds the rows π_e[kNB : (k+1)NB], and rank r of N yields its part of them, rows [r·M/N, (r+1)·M/N)
of the global batch's M rows (⌊·⌋; M = NB but for the epoch's last batch).  So the N ranks together see every
sample once per epoch, exactly the batches one process with batch size N·B sees.  ``loss_scale`` = N·m_r/M (1 but
for an uneven last batch) is what the Trainer scales the rank's loss gradient by, so that the averaged gradient is
that of the global batch's mean loss.  A last global batch of fewer than N rows (some rank would get none) is left
out of the epoch.
"""
from __future__ import annotations

import numpy as np

from ..backend import asnumpy, get_array_module, to_device

__all__ = ["Batches"]


class Batches:
    """Iterate over (x_batch, y_batch) pairs; one ``for`` loop over the object is one epoch (or its rest).

    x, y        arrays with the same first dimension N (host or device; moved to ``device`` once)
    batch_size  B; ``len(batches)`` is ⌈N/B⌉, or ⌊N/B⌋ with ``drop_last``
    shuffle     draw a fresh permutation per epoch (else the data order every epoch)
    seed        seed of the permutations
    transform   optional callable applied to each x batch on the device (augmentation); if it has
                ``state()``/``set_state()`` its state is saved and restored with the iterator's
    """

    def __init__(self, x, y, batch_size: int, shuffle: bool = True, drop_last: bool = False, seed: int = 0,
                 device: str = "cpu", transform=None):
        if len(x) != len(y):
            raise ValueError(f"Batches: x has {len(x)} samples but y has {len(y)}")
        if len(x) == 0:
            raise ValueError("Batches: the data set holds 0 samples, so every epoch would be empty (an empty file, "
                             "or a limit of 0 samples?); give it at least one sample")
        if batch_size < 1:
            raise ValueError(f"Batches: batch_size must be >= 1, got {batch_size}")
        if drop_last and len(x) < batch_size:
            raise ValueError(f"Batches: drop_last with {len(x)} samples < batch_size {batch_size} gives no batch")
        self.x, self.y = to_device(x, device), to_device(y, device)
        self.batch_size, self.shuffle, self.drop_last = int(batch_size), bool(shuffle), bool(drop_last)
        self.seed, self.device, self.transform = int(seed), device, transform
        self.epoch, self.batch = 0, 0           # next batch to yield: batch ``batch`` of epoch ``epoch``
        self.rank = 0
        self.world_size = 1      # N, the number of ranks sharing each global batch
        self.loss_scale = 1.0    # N·m_r/M for the batch last yielded (module docstring)

    def shard(self, rank: int, world_size: int) -> None:
        """Yield rank ``rank``'s part of every global batch of ``world_size`` × ``batch_size`` rows (module
        docstring)."""
        if not 0 <= rank < world_size:
            raise ValueError(f"Batches: rank must lie in [0, {world_size}), got {rank}")
        self.rank, self.world_size = int(rank), int(world_size)
        if len(self) == 0:
            raise ValueError(f"Batches: {self.num_samples} samples give no global batch of {world_size} ranks × "
                             f"{self.batch_size} rows{' (drop_last)' if self.drop_last else ''}")

    @property
    def num_samples(self) -> int:
        return len(self.x)

    def __len__(self) -> int:
        n, b = self.num_samples, self.batch_size * self.world_size
        return n // b if self.drop_last or n % b < self.world_size else -(-n // b)

    def order(self, epoch: int):
        """π_epoch on the device: the sample order of that epoch."""
        n = self.num_samples
        host = np.random.default_rng([self.seed, epoch]).permutation(n) if self.shuffle else np.arange(n)
        return to_device(host, self.device)

    def __iter__(self):
        epoch, order = self.epoch, self.order(self.epoch)
        size = self.batch_size * self.world_size
        for k in range(self.batch, len(self)):
            rows = min(size, self.num_samples - k * size)
            start = k * size + self.rank * rows // self.world_size
            stop = k * size + (self.rank + 1) * rows // self.world_size
            index = order[start:stop]
            self.loss_scale = self.world_size * (stop - start) / rows
            # Advance first, so a checkpoint written while this batch is in use resumes after it.
            self.epoch, self.batch = (epoch, k + 1) if k + 1 < len(self) else (epoch + 1, 0)
            xb = self.x[index]
            yield (self.transform(xb) if self.transform is not None else xb), self.y[index]
        if self.epoch == epoch:                  # started at or past the end (nothing left this epoch)
            self.epoch, self.batch = epoch + 1, 0

    def state(self) -> dict:
        """The iteration state as plain ints (and an int64 array for the transform's state)."""
        state = {"seed": self.seed, "epoch": self.epoch, "batch": self.batch}
        if hasattr(self.transform, "state"):
            state["transform"] = np.asarray(self.transform.state(), dtype=np.int64)
        return state

    def set_state(self, state) -> None:
        """Resume from ``state()`` (values may be Python ints or 0-d / 1-d arrays read back from an .npz).

        A position outside an epoch (a negative epoch, or a batch index not below ``len(self)``: a state written for
        other data or another batch size) is a ValueError, and nothing is changed."""
        seed, epoch, batch = (int(asnumpy(state[k])) for k in ("seed", "epoch", "batch"))
        if epoch < 0 or not 0 <= batch < len(self):
            raise ValueError(f"Batches: saved position (epoch {epoch}, batch {batch}) lies outside an epoch of "
                             f"{len(self)} batches; it was saved for other data or another batch size")
        self.seed, self.epoch, self.batch = seed, epoch, batch
        if "transform" in state and hasattr(self.transform, "set_state"):
            self.transform.set_state(tuple(int(v) for v in asnumpy(state["transform"]).ravel()))

    def __repr__(self) -> str:
        xp = get_array_module(self.x)
        return (f"Batches({self.num_samples} samples on {self.device} ({xp.__name__}), batch_size="
                f"{self.batch_size}, {len(self)} batches/epoch, shuffle={self.shuffle}, seed={self.seed})")
