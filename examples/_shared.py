"""What the examples share: the data, a small Flax (NNX) network, and a training loop.

The data is scikit-learn's handwritten digits (1,797 8x8 images, 10 classes), which
ships inside the package, so every example runs offline.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from tqdm.auto import tqdm


def describe_backend() -> str:
    """The JAX backend and devices this run uses (printed by every example)."""
    line = f"JAX {jax.__version__} on {jax.default_backend()}: {jax.devices()}"
    print(line, flush=True)
    return line


def load_digits(seed: int = 0, test_fraction: float = 0.3):
    """``(x_train, y_train, x_test, y_test)``: pixels scaled to [0, 1], a stratified split."""
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    x, y = sklearn_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y.astype(np.int32), test_size=test_fraction, random_state=seed, stratify=y
    )
    return x_train, y_train, x_test, y_test


class MLP(nnx.Module):
    """A multilayer perceptron with ReLU hidden layers and a linear output (logits)."""

    def __init__(self, sizes: list[int], *, rngs: nnx.Rngs):
        self.layers = nnx.List([nnx.Linear(a, b, rngs=rngs) for a, b in zip(sizes[:-1], sizes[1:])])

    def __call__(self, x: jax.Array) -> jax.Array:
        for layer in self.layers[:-1]:
            x = jax.nn.relu(layer(x))
        return self.layers[-1](x)


def train(
    model: nnx.Module,
    loss_fn: Callable[[nnx.Module, jax.Array, jax.Array], jax.Array],
    x: np.ndarray,
    y: np.ndarray,
    *,
    steps: int,
    batch_size: int = 128,
    learning_rate: float = 3e-3,
    seed: int = 0,
    desc: str = "training",
) -> list[float]:
    """Adam on random minibatches, with a progress bar; returns the loss per step."""
    optimizer = nnx.Optimizer(model, optax.adam(learning_rate), wrt=nnx.Param)

    @nnx.jit
    def step(model, optimizer, xb, yb):
        loss, grads = nnx.value_and_grad(loss_fn)(model, xb, yb)
        optimizer.update(model, grads)
        return loss

    rng = np.random.default_rng(seed)
    history = []
    bar = tqdm(range(steps), desc=desc, leave=False, mininterval=0.5)
    for _ in bar:
        idx = rng.integers(0, len(x), min(batch_size, len(x)))
        loss = float(step(model, optimizer, jnp.asarray(x[idx]), jnp.asarray(y[idx])))
        history.append(loss)
        bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
    bar.close()
    return history


def accuracy(model: nnx.Module, x, y) -> float:
    return float(jnp.mean(jnp.argmax(model(jnp.asarray(x)), -1) == jnp.asarray(y)))


def recall_per_class(model: nnx.Module, x, y, num_classes: int = 10) -> np.ndarray:
    predictions = np.asarray(jnp.argmax(model(jnp.asarray(x)), -1))
    return np.array([np.mean(predictions[y == c] == c) for c in range(num_classes)])
