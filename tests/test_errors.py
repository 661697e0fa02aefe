"""Bad input raises ValueError/TypeError naming the layer's dotted path and the expected vs given value."""
import numpy as np
import pytest

from minibng import nn
from support import on


def model():
    return nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Sequential(nn.Linear(3, 5), nn.Sigmoid()))


def test_wrong_feature_size_names_the_nested_layer(device):
    net = model().to(device)
    with pytest.raises(ValueError, match=r"in layer '0' \(Linear\) during forward: expected 4 features on axis -1, got shape \(2, 7\)"):
        net(on(device, np.zeros((2, 7), np.float32)))


def test_error_deep_in_the_tree_names_the_full_path(device):
    net = model().to(device)
    net[2][0].weight.data = net[2][0].weight.data.astype(np.float64)  # break the inner layer's dtype
    with pytest.raises(TypeError, match=r"in layer '2.0' \(Linear\) during forward: expected float64 input"):
        net(on(device, np.zeros((2, 4), np.float32)))


def test_error_in_backward_names_the_layer(device):
    net = model().to(device)
    net(on(device, np.zeros((2, 4), np.float32)))
    with pytest.raises(ValueError, match=r"in layer Sequential during backward: expected an upstream gradient of shape \(2, 5\)"):
        net.backward(on(device, np.zeros((2, 4), np.float32)))  # wrong upstream width


def test_integer_input_is_a_type_error(device):
    with pytest.raises(TypeError, match="expected a floating-point input, got dtype int64"):
        model().to(device)(on(device, np.zeros((2, 4), np.int64)))


def test_wrong_rank_is_a_value_error(device):
    with pytest.raises(ValueError, match=r"expected input of rank 2 or 3, got shape \(5,\)"):
        nn.SoftmaxCrossEntropy()(on(device, np.zeros(5, np.float32)), on(device, np.zeros(5, np.int64)))


def test_float_labels_are_a_type_error(device):
    with pytest.raises(TypeError, match="labels must be integers"):
        nn.SoftmaxCrossEntropy()(on(device, np.zeros((2, 3), np.float32)), on(device, np.zeros(2, np.float32)))


def test_labels_out_of_range_name_the_range(device):
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\), got values in \[0, 3\]"):
        nn.SoftmaxCrossEntropy()(on(device, np.zeros((2, 3), np.float32)), on(device, np.array([0, 3])))


def test_negative_labels_are_rejected(device):
    with pytest.raises(ValueError, match=r"got values in \[-1, 2\]"):
        nn.SoftmaxCrossEntropy()(on(device, np.zeros((2, 3), np.float32)), on(device, np.array([-1, 2])))


def test_label_shape_must_match_the_logits(device):
    with pytest.raises(ValueError, match=r"labels must have shape \(2,\)"):
        nn.SoftmaxCrossEntropy()(on(device, np.zeros((2, 3), np.float32)), on(device, np.array([0, 1, 2])))


def test_non_finite_logits_are_rejected(device):
    logits = np.zeros((2, 3), np.float32)
    logits[1, 2] = np.nan
    with pytest.raises(ValueError, match="NaN or infinity"):
        nn.SoftmaxCrossEntropy()(on(device, logits), on(device, np.array([0, 1])))


def test_a_non_array_input_is_a_type_error():
    with pytest.raises(TypeError, match="expected a NumPy or CuPy array, got list"):
        nn.Linear(2, 2)([[1.0, 2.0]])


def test_invalid_layer_sizes_are_rejected():
    with pytest.raises(ValueError, match="in_features and out_features must be positive"):
        nn.Linear(0, 3)
