"""What the examples share: the data, a small Flax (NNX) network, a training loop, the
command-line parser and where images go.

The data is scikit-learn's handwritten digits (1,797 8x8 images, 10 classes), which
ships inside the package, so every example runs offline. Images go under ``outputs/``
(relative to the working directory, ignored by git) unless a flag says otherwise.
"""

from __future__ import annotations

import argparse
import os
import pathlib
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from tqdm.auto import tqdm

OUTPUT_DIR = pathlib.Path("outputs")
"""Where the examples write their images by default (relative to the working directory)."""


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows each option's default, and the docstring's paragraphs as they are written."""


def make_parser(doc: str, file: str) -> argparse.ArgumentParser:
    """An argument parser for an example script.

    Args:
      doc: the script's module docstring. Its first paragraph is the description and
        the rest (how to run it) the epilog, both shown as written.
      file: the script's ``__file__``, whose name is the program name in the usage line.

    Returns:
      A parser whose ``--help`` shows every option's default; the options are added by
      the caller, each with a full-sentence help text.
    """
    description, _, epilog = doc.strip().partition("\n\n")
    parser = argparse.ArgumentParser(
        prog=os.path.basename(file),
        description=description,
        epilog=epilog or None,
        formatter_class=_HelpFormatter,
        add_help=False,
    )
    parser.add_argument("-h", "--help", action="help", help="Show this help message and exit.")
    return parser


def output_path(path: str | os.PathLike) -> pathlib.Path:
    """``path`` as a :class:`pathlib.Path`, with its folder created if it does not exist.

    Args:
      path: where an image will be written, e.g. ``outputs/loss_histogram.png``.

    Returns:
      The same path, ready to write to.
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


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
    # disable=None: no progress bar where stderr is not a terminal (a log file, a pipe).
    bar = tqdm(range(steps), desc=desc, leave=False, mininterval=0.5, disable=None)
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
