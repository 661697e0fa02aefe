"""The block-normalized gradient step, by hand, on a toy problem — then the same step from minibng.optim.

Two blocks whose gradients differ in scale by 10^4 (as a deep network's first and last layers can):
    F(x) = ½ Σ_i a_i ‖x^i − c^i‖²,   a = (10^4, 1)
Plain gradient descent must choose a step for the steep block and crawls on the flat one; the
normalized direction ĝ^i = g^i/‖g^i‖ moves every block by the same length τ whatever its gradient's size.

    python examples/ng_by_hand.py
"""
import numpy as np

from minibng import nn, optim

curvature = np.array([1e4, 1.0])
target = [np.array([1.0, -2.0, 0.5]), np.array([3.0, 1.0, -1.0])]


def gradient(blocks):
    """g^i = a_i (x^i − c^i) for each block i."""
    return [a * (x - c) for a, x, c in zip(curvature, blocks, target)]


def loss(blocks):
    return 0.5 * sum(a * ((x - c) ** 2).sum() for a, x, c in zip(curvature, blocks, target))


# 1. One step by hand: ĝ^i = g^i / ‖g^i‖, then x^i ← x^i − τ ĝ^i.
x = [np.zeros(3), np.zeros(3)]
g = gradient(x)
norms = [np.linalg.norm(gi) for gi in g]
g_hat = [gi / n if n > 0 else gi for gi, n in zip(g, norms)]
tau = 0.1
by_hand = [xi - tau * gh for xi, gh in zip(x, g_hat)]
print("block gradient norms ‖g^i‖:", np.round(norms, 3))
print("normalized block norms    :", [round(float(np.linalg.norm(gh)), 12) for gh in g_hat])

# 2. The same step from the library: one Parameter per block, SGD with normalize="block".
params = [nn.Parameter(np.zeros(3)), nn.Parameter(np.zeros(3))]
opt = optim.SGD(params, lr=tau, normalize="block", blocks="tensor")
for p, gi in zip(params, gradient([p.data for p in params])):
    p.grad[...] = gi
opt.step()
difference = max(np.abs(p.data - h).max() for p, h in zip(params, by_hand))
print(f"library step equals the hand-made one: max difference {difference:.1e}")
assert difference < 1e-12

# 3. Fifty steps of each method from the same start.
for name, normalize, lr in [("SGD   (largest stable lr 2/a_max)", None, 1.9e-4), ("SGD-NG (lr 1, ×0.85 per step)   ", "block", 1.0)]:
    params = [nn.Parameter(np.zeros(3)), nn.Parameter(np.zeros(3))]
    opt = optim.SGD(params, lr=lr, normalize=normalize, blocks="tensor")
    for step in range(50):
        opt.zero_grad()
        for p, gi in zip(params, gradient([p.data for p in params])):
            p.grad[...] = gi
        opt.step()
        if normalize:
            opt.lr *= 0.85  # a normalized step needs a decaying length to settle
    distances = [np.linalg.norm(p.data - c) for p, c in zip(params, target)]
    print(f"{name}: loss {loss([p.data for p in params]):10.4f}   distance to optimum per block {np.round(distances, 3)}")
