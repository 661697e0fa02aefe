"""The paper's networks, one file each, built from minibng.nn modules (models import only nn and backend)."""
from .lstm_lm import lstm_lm
from .mlp import mlp
from .resnet import preact_resnet, resnet_cifar
from .text_cnn import text_cnn

__all__ = ["mlp", "text_cnn", "resnet_cifar", "preact_resnet", "lstm_lm"]
