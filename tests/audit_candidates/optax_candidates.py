"""Hand-written optax optimizers for the optimizer audit's tests: correct ones and deliberately wrong ones.

Each factory is ``FACTORY()`` returning an optax.GradientTransformation over the audit's parameter tree
{"0": {"weight": …, "bias": …}, …}, whose top-level keys are the layers (the blocks).
"""
import jax
import jax.numpy as jnp
import optax


def block_norm(leaves, naive=False):
    if naive:
        return jnp.sqrt(sum(jnp.sum(g * g) for g in leaves))
    largest = max(jnp.max(jnp.abs(g)) for g in leaves)
    safe = jnp.where(largest > 0, largest, 1)
    return largest * jnp.sqrt(sum(jnp.sum((g / safe) ** 2) for g in leaves))


def normalize_blocks(naive=False, whole_tree=False):
    """ĝ^i = g^i/‖g^i‖ per layer (per top-level key), or over the whole tree; a zero block stays zero."""

    def scale(tree):
        norm = block_norm(jax.tree_util.tree_leaves(tree), naive)
        return jax.tree_util.tree_map(lambda g: jnp.where(norm > 0, g / jnp.where(norm > 0, norm, 1), 0), tree)

    def update(updates, state, params=None):
        if whole_tree:
            return scale(updates), state
        return {layer: scale(leaves) for layer, leaves in updates.items()}, state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def adam_without_bias_correction(lr, b1=0.9, b2=0.999, eps=1e-8):
    def init(params):
        zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
        return optax.ScaleByAdamState(jnp.zeros([], jnp.int32), zeros, zeros)

    def update(updates, state, params=None):
        mu = jax.tree_util.tree_map(lambda m, g: b1 * m + (1 - b1) * g, state.mu, updates)
        nu = jax.tree_util.tree_map(lambda v, g: b2 * v + (1 - b2) * g * g, state.nu, updates)
        steps = jax.tree_util.tree_map(lambda m, v: -lr * m / (jnp.sqrt(v) + eps), mu, nu)
        return steps, optax.ScaleByAdamState(state.count + 1, mu, nu)

    return optax.GradientTransformation(init, update)


def adamng():
    return optax.chain(normalize_blocks(), optax.adam(1e-3))


def adamng_naive():
    return optax.chain(normalize_blocks(naive=True), optax.adam(1e-3))


def adamng_global():
    return optax.chain(normalize_blocks(whole_tree=True), optax.adam(1e-3))


def adamng_without_bias_correction():
    return optax.chain(normalize_blocks(), adam_without_bias_correction(1e-3))


def not_a_transformation():
    return "adam"
