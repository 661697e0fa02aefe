"""One update of the paper's 18-layer sigmoid MLP, traced layer by layer: why the gradients vanish, and what Adam
and AdamNG do with them.

The network of §4.1 (784 → 17 hidden layers of 100 sigmoids → 10, Torch7's initialization) and the first 100
MNIST training images, found in minibng's data roots ($MINIBNG_DATA, ./datasets, ~/.cache/minibng, …); this
script never downloads: without MNIST it uses synthetic 28×28 images and says so.  Two tables, one line per layer:

1. The backward pass.  The error reaching layer i, δ^i = ∂L/∂z^i (its bias gradient ∂L/∂b^i = Σ_n δ^i_n), is
   the error of layer i + 1 sent back through W^{i+1} and multiplied by the slope σ′ of layer i's units:
   δ^i = (δ^{i+1} W^{i+1}ᵀ) ∘ σ′(z^i).  ‖g^i‖ from minibng's hand-written backward, and from PyTorch's autograd
   on the same network with the same weights when PyTorch is installed.
2. The update x_{t+1} = x_t − u_t of Adam and of AdamNG (Adam fed ĝ^i = g^i/‖g^i‖), read from the optimizer's chain
   with minibng.audit.ChainTrace: the direction d the rule is fed, Adam's m and v, the bias-corrected step
   u = η (m/c₁)/(√(v/c₂) + ε), and the step each layer actually took, ‖x^i_{t+1} − x^i_t‖ (in float32).

    python examples/trace_one_update.py
"""
import textwrap

import numpy as np

import minibng as mb
from minibng import audit, models, nn, optim
from minibng.data import DatasetError, mnist, search_roots, synthetic
from minibng.nn.activation import sigmoid

DEPTH, BATCH, LR = 18, 100, 1e-3


def first_batch():
    """(x (100, 784) float32 in [0, 1], labels, where they came from): MNIST's first 100 training images, or
    synthetic images (a bright band whose height gives the class) when MNIST is not in a data root."""
    try:
        images, labels, _, _ = mnist.load("mnist", download=False)
        source = f"MNIST, the first {BATCH} training images"
    except DatasetError:
        images, labels = synthetic.images(n=BATCH, classes=10, channels=1, size=28, seed=0)
        roots = ", ".join(map(str, search_roots()))
        source = (f"SYNTHETIC images ({BATCH} of 28×28, a bright band whose height is the class): MNIST was not "
                  f"found in {roots}, and this script never downloads (python -m minibng.examples.mnist_mlp "
                  "does). The numbers differ from docs/why-ng.md's")
    x = (images[:BATCH].reshape(BATCH, 28 * 28) / np.float32(255)).astype(np.float32)
    return x, labels[:BATCH].astype(np.int64), source


def norm(*arrays):
    """‖(a, b, …)‖₂ of all the numbers in ``arrays`` together, in float64."""
    return float(np.sqrt(sum((np.asarray(a, np.float64) ** 2).sum() for a in arrays)))


def backward_pass(model, x, y):
    """Forward and backward layer by layer, recording per weight layer i: the mean slope σ′(z^i) of its units (None
    for the output layer), ‖W^i‖, ‖∂L/∂b^i‖ (the error δ^i summed over the batch), how much its inputs differ from
    one image to the next (the root mean square of h^{i−1}_n − mean_n h^{i−1}_n) and ‖g^i‖ (weight and bias)."""
    linears = [layer for layer in model if isinstance(layer, nn.Linear)]
    rows = [{} for _ in linears]
    h, i = x, -1
    for layer in model:
        if isinstance(layer, nn.Linear):
            i += 1
            rows[i]["input spread"] = norm(h - h.mean(axis=0)) / np.sqrt(len(h))
        elif isinstance(layer, nn.Sigmoid):
            slope = np.empty_like(h)
            sigmoid(h, slope=slope)                         # σ′(z) = σ(z) σ(−z), h holds z here
            rows[i]["mean σ′"] = float(slope.mean())
        h = layer(h)
    loss_fn = nn.SoftmaxCrossEntropy()
    loss_fn(h, y)
    dy = loss_fn.backward()
    for layer in reversed(list(model)):                     # model.backward(dy), one layer at a time
        dy = layer.backward(dy)
    for row, layer in zip(rows, linears):
        row.setdefault("mean σ′", None)
        row["‖W‖"] = norm(layer.weight.data)
        row["‖∂L/∂b‖"] = norm(layer.bias.grad)
        row["‖g‖"] = norm(layer.weight.grad, layer.bias.grad)
    return rows


def autograd_norms(model, x, y):
    """‖g^i‖ per weight layer from PyTorch's autograd on the same network, weights copied (None without PyTorch)."""
    try:
        import torch
    except ImportError:
        return None
    layers = []
    for layer in model:
        if isinstance(layer, nn.Linear):
            twin = torch.nn.Linear(layer.in_features, layer.out_features)
            with torch.no_grad():
                twin.weight.copy_(torch.from_numpy(layer.weight.data.T.copy()))   # PyTorch keeps W as (out, in)
                twin.bias.copy_(torch.from_numpy(layer.bias.data))
            layers.append(twin)
        else:
            layers.append(torch.nn.Sigmoid())
    net = torch.nn.Sequential(*layers)
    torch.nn.functional.cross_entropy(net(torch.from_numpy(x)), torch.from_numpy(y)).backward()
    return [norm(t.weight.grad.numpy(), t.bias.grad.numpy()) for t in layers if isinstance(t, torch.nn.Linear)]


def one_update(model, x, y, normalize):
    """One Adam step (AdamNG with normalize="block") from ``model``'s weights on (x, y): per block, ‖d^i‖ (what the
    rule is fed), ‖m^i‖, ‖v^i‖, the step ‖u^i‖ and the change ‖x^i_{t+1} − x^i_t‖ actually made in float32."""
    net = model.copy()
    opt = optim.Adam(net, lr=LR, normalize=normalize)
    loss_fn = nn.SoftmaxCrossEntropy()
    loss_fn(net(x), y)
    opt.zero_grad()
    net.backward(loss_fn.backward())
    before = opt.flat.x.copy()
    with audit.ChainTrace(opt) as trace:
        opt.step()
    step = trace.step(1)
    outputs = dict(step.outputs)
    direction = outputs["block"] if normalize else step.gradient     # the vector the rule (Adam) is fed
    columns = {"‖d‖": direction, "‖m‖": step.state["exp_avg"], "‖v‖": step.state["exp_avg_sq"],
               "‖u‖": outputs["adam"], "‖Δx‖": opt.flat.x - before}
    return {name: trace.norms_of(vector) for name, vector in columns.items()}


def cell(value, width=10):
    return f"{'—':>{width}}" if value is None else f"{value:>{width}.3g}"


def say(text):
    """One sentence of the legend, wrapped for a terminal."""
    print(textwrap.fill(text, width=116, subsequent_indent="    "))


def print_backward(rows, torch_norms):
    print(f"{'layer':>5} {'mean σ′':>8} {'‖W^i‖':>7} {'‖∂L/∂b^i‖':>10} {'fall':>6} {'in spread':>9} "
          f"{'‖g^i‖':>10} {'autograd':>10}")
    for i, row in enumerate(rows):
        fall = rows[i + 1]["‖∂L/∂b‖"] / row["‖∂L/∂b‖"] if i + 1 < len(rows) else None
        print(f"{i + 1:>5} {cell(row['mean σ′'], 8)} {row['‖W‖']:>7.3f} {cell(row['‖∂L/∂b‖'])} {cell(fall, 6)} "
              f"{row['input spread']:>9.3f} {cell(row['‖g‖'])} {cell(None if torch_norms is None else torch_norms[i])}")


def explain_backward(rows, torch_norms):
    hidden = [row["mean σ′"] for row in rows[:-1]]
    say(f"mean σ′: the slope of the layer's sigmoids, averaged over its units and the images: σ′ ≤ ¼ always, and "
        f"{min(hidden):.3f}–{max(hidden):.3f} here, where every unit starts near σ(0).")
    say("‖W^i‖: the weight's Frobenius norm. An error vector sent back through Wᵀ shrinks by about ‖W‖/√(the layer's "
        "units) = 1/√3 ≈ 0.577 in every layer, because Torch7's uniform(±1/√n_in) has variance 1/(3 n_in).")
    say("‖∂L/∂b^i‖: the error δ^i reaching layer i, summed over the batch. fall: the layer above's over this one; "
        "1/(σ′ × 0.577) ≈ 7 in every layer: 17 falls of ~7× from the output down to layer 1.")
    say("in spread: how much the layer's inputs differ from one image to the next (root mean square about their mean). "
        "Where they are all alike (≈ ½ from layer 3 up), g^i ≈ (mean input)ᵀ(summed error): the images' errors cancel "
        "in the sum, and ‖g^i‖ ≈ 5‖∂L/∂b^i‖ follows the 7× trend. Where the inputs differ (the images, at layer 1; "
        "layer 1's outputs too, on data as large as vanishing_gradients.py's), less cancels and ‖g^i‖ sits above "
        "the trend: the up and down of the first layers.")
    if torch_norms is None:
        say("‖g^i‖: minibng's hand-written backward (PyTorch is not installed, so no autograd column).")
    else:
        worst = max(abs(row["‖g‖"] - other) / other for row, other in zip(rows, torch_norms))
        say(f"‖g^i‖, autograd: minibng's hand-written backward and PyTorch's autograd on the same float32 weights; "
            f"they agree to {worst:.1e} (relative) in every layer.")


def print_update(adam, adamng):
    names = list(adam)
    print(f"{'':5} | {'Adam':^54} | {'AdamNG':^54}".rstrip())
    print(f"{'layer':>5} | " + " ".join(f"{n:>10}" for n in names) + " | " + " ".join(f"{n:>10}" for n in names))
    for i in range(len(adam["‖d‖"])):
        print(f"{i + 1:>5} | " + " ".join(cell(adam[n][i]) for n in names) + " | "
              + " ".join(cell(adamng[n][i]) for n in names))


def explain_update(adam, adamng):
    steps, hidden = adam["‖Δx‖"], adamng["‖Δx‖"][1:-1]
    say("‖d‖: what the Adam rule is fed: g^i itself (Adam); ĝ^i = g^i/‖g^i‖, of norm 1 in every layer (AdamNG).")
    say(f"‖m‖, ‖v‖: after one step m = (1 − β₁)d and v = (1 − β₂)d², so ‖m‖ = ‖d‖/10, and Adam's ‖v‖ in layer 1 is "
        f"{adam['‖v‖'][0]:.1e}: squares of gradients that vanished.")
    say("‖u‖: the bias-corrected step η (m/c₁)/(√(v/c₂) + ε), c_k = 1 − β_kᵗ. At t = 1 it is η d/(|d| + ε) per "
        "coordinate: η wherever |d| ≫ ε = 1e-8, but only η|d|/ε where |d| ≪ ε, as in Adam's lower layers. AdamNG's "
        "entries are ~1/√d_i ≫ ε, so every coordinate whose gradient is not 0 moves by η: ‖u^i‖ = η√d_i = 0.1 in "
        "every hidden layer, whatever ‖g^i‖ was (layer 1: the pixels that are 0 in every image have gradient 0).")
    orders = np.log10(max(steps) / min(steps))
    say(f"‖Δx‖: the step each layer took, ‖x^i_(t+1) − x^i_t‖ in float32. Adam's range from {min(steps):.1e} "
        f"(layer {int(np.argmin(steps)) + 1}) to {max(steps):.2g}, a factor of ~10^{orders:.0f}, and in its lowest "
        "layers rounding distorts even u: a coordinate's step below half the spacing of its weight is lost (layer 1 "
        f"moves {steps[0] / adam['‖u‖'][0]:.0%} of ‖u‖). AdamNG's hidden layers all move "
        f"{_span(min(hidden), max(hidden))}: the same step in every layer.")


def _span(low, high):
    """"0.1005" when both print alike, "0.1004–0.1006" otherwise."""
    low, high = f"{low:.4f}", f"{high:.4f}"
    return low if low == high else f"{low}–{high}"


def main():
    x, y, source = first_batch()
    mb.manual_seed(0)
    model = models.mlp(DEPTH)                       # Torch7's initialization: W, b ~ uniform(±1/√fan_in)
    rows = backward_pass(model.copy(), x, y)
    torch_norms = autograd_norms(model, x, y)
    adam, adamng = one_update(model, x, y, None), one_update(model, x, y, "block")

    say(f"Data: {source}.")
    say(f"Network: {DEPTH} weight layers (17 hidden layers of 100 sigmoid units, then 10 outputs), Torch7's "
        "initialization, seed 0; the loss is the mean cross-entropy over the batch.")
    print("\n1. The backward pass, one line per weight layer (1 = the input layer)\n")
    print_backward(rows, torch_norms)
    print()
    explain_backward(rows, torch_norms)
    print("\n2. One update (t = 1, η = 1e-3), Adam beside AdamNG, one line per layer\n")
    print_update(adam, adamng)
    print()
    explain_update(adam, adamng)

    hidden_steps = adamng["‖Δx‖"][1:-1]
    assert max(hidden_steps) / min(hidden_steps) < 1.01, "AdamNG's hidden layers should take equal steps"
    assert max(adam["‖Δx‖"]) / min(adam["‖Δx‖"]) > 1e6, "Adam's steps should span orders of magnitude"
    assert torch_norms is None or np.allclose([row["‖g‖"] for row in rows], torch_norms, rtol=1e-5, atol=0)


if __name__ == "__main__":
    main()
