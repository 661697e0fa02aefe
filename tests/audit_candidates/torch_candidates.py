"""Hand-written PyTorch optimizers for the optimizer audit's tests: correct ones and deliberately wrong ones.

Each factory is ``FACTORY(model)`` with ``model`` a torch.nn.Sequential of nn.Linear layers and activations, and
returns an object with ``step()`` (here torch.optim.Optimizers whose blocks are the model's layers).
"""
import torch


def layers_of(model, per_tensor=False):
    layers = [list(m.parameters()) for m in model if list(m.parameters())]
    return [[p] for layer in layers for p in layer] if per_tensor else layers


def block_norm(grads, naive=False):
    if naive:
        return torch.sqrt(sum((g * g).sum() for g in grads))
    largest = max(g.abs().max() for g in grads)
    safe = torch.where(largest > 0, largest, torch.ones_like(largest))
    return largest * torch.sqrt(sum(((g / safe) ** 2).sum() for g in grads))


def inverse(norm):
    """1/‖g^i‖, and 0 for a zero block (which stays zero)."""
    return torch.where(norm > 0, 1 / torch.where(norm > 0, norm, 1), 0)


class NormalizedAdam(torch.optim.Optimizer):
    """Adam fed g^i/‖g^i‖ per layer; ``weight_decay`` λ added after the normalization, or before with
    ``decay_first``."""

    def __init__(self, model, lr=1e-3, naive=False, per_tensor=False, weight_decay=0.0, decay_first=False):
        self.blocks = layers_of(model, per_tensor)
        super().__init__(model.parameters(), {"lr": lr})
        self.inner = torch.optim.Adam(model.parameters(), lr=lr)
        self.naive, self.weight_decay, self.decay_first = naive, weight_decay, decay_first
        self.state = self.inner.state

    @torch.no_grad()
    def step(self):
        for block in self.blocks:
            if self.decay_first:
                for p in block:
                    p.grad = p.grad + self.weight_decay * p
            norm = block_norm([p.grad for p in block], self.naive)
            for p in block:
                direction = p.grad * inverse(norm)
                p.grad = direction if self.decay_first else direction + self.weight_decay * p
        self.inner.step()


class NormalizedSGDM(torch.optim.Optimizer):
    """Momentum SGD on g^i/‖g^i‖ (or, with ``normalize_velocity``, on g with the velocity normalized)."""

    def __init__(self, model, lr=0.1, momentum=0.9, normalize_velocity=False):
        self.blocks = layers_of(model)
        super().__init__(model.parameters(), {"lr": lr})
        self.lr, self.momentum, self.normalize_velocity = lr, momentum, normalize_velocity

    @torch.no_grad()
    def step(self):
        for block in self.blocks:
            norm = block_norm([p.grad for p in block])
            for p in block:
                d = p.grad if self.normalize_velocity else p.grad * inverse(norm)
                state = self.state[p]
                state["momentum_buffer"] = d.clone() if "momentum_buffer" not in state else \
                    self.momentum * state["momentum_buffer"] + d
            velocity = [self.state[p]["momentum_buffer"] for p in block]
            scale = inverse(block_norm(velocity)) if self.normalize_velocity else 1.0
            for p, v in zip(block, velocity):
                p -= self.lr * scale * v


def adamng(model):
    return NormalizedAdam(model)


def adamng_naive(model):
    return NormalizedAdam(model, naive=True)


def adamng_per_tensor(model):
    return NormalizedAdam(model, per_tensor=True)


def adamng_decay(model):
    return NormalizedAdam(model, weight_decay=0.01)


def adamng_decay_first(model):
    return NormalizedAdam(model, weight_decay=0.01, decay_first=True)


def sgdmng(model):
    return NormalizedSGDM(model)


def sgdmng_velocity_normalized(model):
    return NormalizedSGDM(model, normalize_velocity=True)


def adam(model):
    return torch.optim.Adam(model.parameters(), lr=1e-3)


def no_step(model):
    return [p for p in model.parameters()]
