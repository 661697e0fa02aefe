"""minibng: a small deep-learning framework for teaching, auditing and reproducing the Block-Normalized
Gradient method (BNG, arXiv 1707.04822).  Every gradient and every optimizer step is explicit array code that
runs on NumPy (CPU) or CuPy (GPU)."""
from . import audit, backend, data, gradcheck, models, nn, optim, theory, train
from .backend import manual_seed

__version__ = "0.1.0"
__all__ = ["audit", "backend", "data", "models", "nn", "optim", "train", "manual_seed", "gradcheck", "theory"]
