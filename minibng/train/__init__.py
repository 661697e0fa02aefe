"""The training run, one subsystem: the loop and everything a run writes, reads back and guards.

    from minibng.train import Trainer
    trainer = Trainer(model, nn.SoftmaxCrossEntropy(), opt, train_batches, epochs=20,
                      evaluate={"test": test_batches}, out="runs/adamng")
    history = trainer.fit(resume=True)

| file            | what it holds                                                                          |
|-----------------|----------------------------------------------------------------------------------------|
| loop.py         | :class:`Trainer`: epochs, steps, the schedule, logs, the guard against NaN/∞          |
| evaluation.py   | :func:`evaluate`, :func:`update_batchnorm` (BatchNorm statistics for the final weights) |
| callbacks.py    | callbacks of a recipe: :class:`MaxNorm`                                                |
| recorders.py    | :class:`BlockStepRecorder`: each block's ‖g^i‖ and step ‖Δx^i‖ every N steps            |
| checkpoint.py   | the checkpoint's .npz format; saving a run, restoring it                               |
| resume.py       | the checks before a run resumes from a checkpoint                                      |
| lock.py         | the run lock: one writer per output folder                                             |
| errors.py       | the errors of a run, each carrying its data (which setting, which values, which file)  |

Every file of a run is written atomically by :mod:`minibng.files` (whose ``atomic_write``, ``write_table`` and
``write_jsonl`` are re-exported here).
"""
from .callbacks import MaxNorm
from .checkpoint import load_npz, random_streams, save_npz
from .errors import (ChangedSettingsError, CheckpointError, FewerEpochsError, FolderLockedError, NonFiniteError,
                     OtherWorldSizeError, SettingDifference)
from .evaluation import evaluate, update_batchnorm
from ..files import atomic_write, write_jsonl, write_table
from .lock import LOCK_NAME, folder_lock
from .loop import Trainer
from .recorders import BlockStepRecorder
from .resume import CHANGEABLE_ON_RESUME

__all__ = [
    "Trainer", "evaluate", "update_batchnorm", "MaxNorm", "BlockStepRecorder",
    "NonFiniteError", "CheckpointError", "ChangedSettingsError", "OtherWorldSizeError", "FewerEpochsError",
    "FolderLockedError", "SettingDifference", "CHANGEABLE_ON_RESUME",
    "save_npz", "load_npz", "random_streams", "atomic_write", "write_table", "write_jsonl", "folder_lock",
    "LOCK_NAME",
]
