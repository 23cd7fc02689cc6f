"""Binary log loss: logistic regression on the breast-cancer dataset (scikit-learn)
with ``sigmoid_cross_entropy``, the loss on logits that stays exact where the
probability form must clamp.

    python examples/logistic_regression.py            # a few seconds
    python examples/logistic_regression.py --steps 5  # smoke run
"""

from __future__ import annotations

import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _shared import describe_backend, make_parser  # noqa: E402

import jaxloss  # noqa: E402


def load_breast_cancer(seed=0):
    from sklearn.datasets import load_breast_cancer as sklearn_breast_cancer
    from sklearn.model_selection import train_test_split

    x, y = sklearn_breast_cancer(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.3, random_state=seed, stratify=y
    )
    mean, std = x_train.mean(0), x_train.std(0)
    standardize = lambda a: ((a - mean) / std).astype(np.float32)  # noqa: E731
    return (standardize(x_train), y_train.astype(np.float32),
            standardize(x_test), y_test.astype(np.float32))  # fmt: skip


def main(argv=None) -> dict:
    parser = make_parser(__doc__, __file__)
    parser.add_argument(
        "--steps", type=int, default=500, help="Number of Adam steps on the whole training set."
    )
    parser.add_argument("--learning-rate", type=float, default=0.05, help="Adam's learning rate.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the train/test split.")
    args = parser.parse_args(argv)

    describe_backend()
    x_train, y_train, x_test, y_test = load_breast_cancer(args.seed)
    params = {"w": jnp.zeros(x_train.shape[1]), "b": jnp.zeros(())}
    optimizer = optax.adam(args.learning_rate)
    state = optimizer.init(params)

    def logits(params, x):
        return x @ params["w"] + params["b"]

    def loss_fn(params):
        return jaxloss.sigmoid_cross_entropy(logits(params, x_train), y_train, reduction="mean")

    @jax.jit
    def step(params, state):
        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, state = optimizer.update(grads, state)
        return optax.apply_updates(params, updates), state, loss

    every = max(1, args.steps // 5)
    loss = float("nan")
    # disable=None: no progress bar where stderr is not a terminal (a log file, a pipe).
    for i in tqdm(range(args.steps), desc="logistic regression", leave=False, disable=None):
        params, state, loss = step(params, state)
        if i % every == 0:
            tqdm.write(f"step {i:4d}  log loss {float(loss):.4f}")

    def accuracy(x, y):
        return float(jnp.mean((logits(params, x) > 0) == (y > 0.5)))

    test_loss = float(jaxloss.sigmoid_cross_entropy(logits(params, x_test), y_test,
                                                    reduction="mean"))  # fmt: skip
    result = {"train_loss": float(loss), "test_loss": test_loss,
              "train_accuracy": accuracy(x_train, y_train),
              "test_accuracy": accuracy(x_test, y_test)}  # fmt: skip
    print(
        f"log loss: train {result['train_loss']:.4f}, test {test_loss:.4f}; "
        f"accuracy: train {result['train_accuracy']:.3f}, test {result['test_accuracy']:.3f}"
    )
    return result


if __name__ == "__main__":
    main()
