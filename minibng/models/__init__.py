"""The paper's networks, one file each, built from minibng.nn modules (models import only nn and backend)."""
from .mlp import mlp

__all__ = ["mlp"]
