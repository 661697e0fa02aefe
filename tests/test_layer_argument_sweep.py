"""Every argument of every layer's constructor, given a string, None, a bool, NaN, ±∞ or −1 where something else
belongs: a TypeError or ValueError naming the layer and the argument, before any weight is drawn — or, where the
value means something (None for "draw a seed", True for a flag, −1 for the last axis), a layer."""
import inspect
import math

import pytest

from minibng import backend, nn
from minibng.nn.recurrent import LSTMLayer

POOL = dict(kernel_size=2, stride=2, padding=0)
NORM = dict(num_features=3, eps=1e-5, momentum=0.1, affine=True, dtype="float32")
VALID = {   # every layer with constructor arguments, and a valid value for each
    nn.Linear: dict(in_features=3, out_features=2, bias=True, init="torch", dtype="float32", rng=0, input_grad=True),
    nn.Conv2d: dict(in_channels=1, out_channels=2, kernel_size=3, stride=1, padding=0, bias=True, init="torch",
                    dtype="float32", rng=0, max_columns_bytes=2**20, input_grad=True),
    nn.MaxPool2d: POOL, nn.AvgPool2d: POOL, nn.BatchNorm1d: NORM, nn.BatchNorm2d: NORM,
    nn.Dropout: dict(p=0.5, seed=0),
    nn.Embedding: dict(num_embeddings=5, embedding_dim=3, init="normal", dtype="float32", rng=0, check=True),
    nn.LSTM: dict(input_size=3, hidden_size=4, num_layers=1, dropout=0.0, init="torch", dtype="float32", rng=0, seed=0),
    LSTMLayer: dict(input_size=3, hidden_size=4, init="torch", dtype="float32", rng=0),
    nn.SoftmaxCrossEntropy: dict(check=True),
    nn.Residual: dict(branch=nn.ReLU(), shortcut=None),
    nn.Concat: dict(axis=1),
}
WITHOUT_ARGUMENTS = (nn.ReLU, nn.Sigmoid, nn.Tanh, nn.Flatten, nn.GlobalAvgPool2d, nn.GlobalMaxPool2d, nn.Sequential)
BAD = {"text": "0.5", "None": None, "True": True, "False": False, "nan": math.nan, "inf": math.inf, "-inf": -math.inf,
       "-1": -1}
FLAGS = ("bias", "input_grad", "affine", "check")


def meaningful(layer_class, argument, value):
    """True where ``value`` is a valid ``argument``: a flag's bools, None where it means "the default" (draw a seed,
    a pool's stride = its kernel, the identity shortcut), −1 for Concat's last axis."""
    if argument in FLAGS:
        return isinstance(value, bool)
    if value is None:
        return argument in ("rng", "seed", "shortcut") or (argument == "stride" and "Pool" in layer_class.__name__)
    return (argument, value) == ("axis", -1) and not isinstance(value, bool)


def build(layer_class, **arguments):
    if layer_class is nn.Concat:
        return nn.Concat(nn.ReLU(), **arguments)
    return layer_class(**arguments)


def constructor_arguments(layer_class):
    parameters = inspect.signature(layer_class.__init__).parameters.values()
    return [p.name for p in parameters if p.name != "self" and p.kind is not p.VAR_POSITIONAL]


def test_the_sweep_covers_every_argument_of_every_layer():
    layers = {getattr(nn, name) for name in nn.__all__ if isinstance(getattr(nn, name), type)
              and issubclass(getattr(nn, name), nn.Module) and getattr(nn, name) is not nn.Module}
    assert layers <= set(VALID) | set(WITHOUT_ARGUMENTS)
    for layer_class, arguments in VALID.items():
        assert constructor_arguments(layer_class) == list(arguments), layer_class.__name__
        build(layer_class, **arguments)
    for layer_class in WITHOUT_ARGUMENTS:
        assert constructor_arguments(layer_class) == []


CASES = [(layer_class, argument, label) for layer_class, arguments in VALID.items() for argument in arguments
         for label in BAD]


@pytest.mark.parametrize("layer_class, argument, label", CASES,
                         ids=[f"{c.__name__}-{a}-{label}" for c, a, label in CASES])
def test_a_wrong_value_is_refused_naming_the_layer_and_the_argument(layer_class, argument, label):
    value = BAD[label]
    arguments = {**VALID[layer_class], argument: value}
    if meaningful(layer_class, argument, value):
        build(layer_class, **arguments)
        return
    generator = backend.host_rng()
    before = generator.bit_generator.state
    with pytest.raises((TypeError, ValueError)) as refusal:
        build(layer_class, **arguments)
    message = str(refusal.value)
    assert layer_class.__name__ in message and argument in message, message
    assert "not supported between" not in message and "could not convert" not in message
    assert generator.bit_generator.state == before, "a refused layer drew weights"


@pytest.mark.parametrize("text, error, message", [
    ("Dropout('0.5')", TypeError, r"Dropout: p must be a number, got '0\.5' \(str\)"),
    ("nn.BatchNorm1d(3, momentum='0.1')", TypeError, r"BatchNorm1d: momentum must be a number, got '0\.1' \(str\)"),
    ("nn.BatchNorm2d(3, eps=math.inf)", ValueError, "BatchNorm2d: eps must be a finite number, got inf"),
    ("nn.Linear(3, 2, dtype=None)", TypeError, r"Linear: dtype must be float32 or float64, got None"),
    ("nn.Linear(3, 2, dtype='int32')", TypeError, r"Linear: dtype must be float32 or float64, got 'int32'"),
    ("nn.Conv2d(1, 2, True)", TypeError, r"Conv2d kernel_size must be an int or a pair of ints, got True"),
    ("nn.LSTM(3, 4.0)", TypeError, r"LSTM: hidden_size must be an integer, got 4\.0 \(float\)"),
    ("nn.Embedding(5, 3, init=math.inf)", ValueError, r"Embedding: init must be 'normal' or a positive float bound"),
    ("nn.Linear(3, 2, bias='no')", TypeError, r"Linear: bias must be True or False, got 'no' \(str\)"),
    ("nn.Residual(lambda x: x)", TypeError, "Residual takes Modules, got function as branch"),
])
def test_the_messages_say_what_was_expected_and_what_was_given(text, error, message):
    with pytest.raises(error, match=message):
        eval(text, {"nn": nn, "Dropout": nn.Dropout, "math": math})   # noqa: S307 - the test's own literals


def test_numpy_scalars_are_numbers_and_numpy_integers_are_sizes():
    np = backend.host_module()
    layer = nn.BatchNorm1d(np.int64(3), eps=np.float32(1e-3), momentum=np.float64(0.2), affine=np.True_)
    assert (layer.num_features, layer.momentum) == (3, 0.2) and layer.weight is not None
    assert nn.Dropout(np.float32(0.25)).p == 0.25
    assert nn.Linear(3, 2, dtype=np.float64).weight.dtype == np.float64


def test_astype_and_train_take_what_they_say():
    model = nn.Sequential(nn.Linear(3, 2))
    with pytest.raises(TypeError, match=r"Sequential\.astype: dtype must be float32 or float64, got 'int32'"):
        model.astype("int32")
    with pytest.raises(TypeError, match=r"Sequential\.train: mode must be True or False, got 'eval'"):
        model.train("eval")
    assert model.train(False).training is False and model[0].training is False
