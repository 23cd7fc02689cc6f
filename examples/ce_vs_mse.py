"""Why classification uses cross-entropy rather than mean squared error, shown.

With a sigmoid output p = s(x) and label 1, the gradient each loss sends to the logit:

    cross-entropy:  dL/dx = p - 1                -> -1 as the prediction gets confidently wrong
    squared error:  dL/dx = 2 (p - 1) p (1 - p)  -> 0: learning stops on the worst mistakes

The script plots both gradients against the logit, then trains the same logistic
regression from a confidently wrong start with each loss and plots the curves.

    python examples/ce_vs_mse.py                      # a few seconds; writes outputs/ce_vs_mse.png
    python examples/ce_vs_mse.py --steps 5 --plot ''  # smoke run
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
from _shared import OUTPUT_DIR, describe_backend, make_parser, output_path  # noqa: E402
from logistic_regression import load_breast_cancer  # noqa: E402

import jaxloss  # noqa: E402

DEFAULT_PLOT = str(OUTPUT_DIR / "ce_vs_mse.png")
"""Where the figure goes unless ``--plot`` says otherwise."""


def cross_entropy(logits, labels):
    return jaxloss.sigmoid_cross_entropy(logits, labels, reduction="mean")


def squared_error(logits, labels):
    return jnp.mean((jax.nn.sigmoid(logits) - labels) ** 2)


def gradient_curves(logits):
    """The gradient with respect to the logit of a positive example, under each loss."""
    ones = jnp.ones_like(logits)
    ce = jax.vmap(jax.grad(lambda x, y: cross_entropy(x[None], y[None])))(logits, ones)
    mse = jax.vmap(jax.grad(lambda x, y: squared_error(x[None], y[None])))(logits, ones)
    return np.asarray(ce), np.asarray(mse)


def train_curves(loss_fn, steps, learning_rate, seed, args_scale):
    x_train, y_train, x_test, y_test = load_breast_cancer(seed)
    # A confidently wrong start: the weights of a good model, negated and scaled up.
    direction = np.linalg.lstsq(x_train, 2 * y_train - 1, rcond=None)[0]
    params = {"w": jnp.asarray(-args_scale * direction / np.linalg.norm(direction), jnp.float32),
              "b": jnp.zeros(())}  # fmt: skip
    optimizer = optax.sgd(learning_rate)
    state = optimizer.init(params)

    def logits(p, x):
        return x @ p["w"] + p["b"]

    @jax.jit
    def step(params, state):
        loss, grads = jax.value_and_grad(lambda p: loss_fn(logits(p, x_train), y_train))(params)
        updates, state = optimizer.update(grads, state)
        return optax.apply_updates(params, updates), state, loss

    losses, accuracies = [], []
    # disable=None: no progress bar where stderr is not a terminal (a log file, a pipe).
    for _ in tqdm(range(steps), desc=loss_fn.__name__, leave=False, disable=None):
        params, state, loss = step(params, state)
        losses.append(float(cross_entropy(logits(params, x_train), y_train)))
        accuracies.append(float(jnp.mean((logits(params, x_test) > 0) == (y_test > 0.5))))
    return losses, accuracies


def main(argv=None) -> dict:
    parser = make_parser(__doc__, __file__)
    parser.add_argument(
        "--steps", type=int, default=300, help="Number of gradient-descent steps under each loss."
    )
    parser.add_argument(
        "--learning-rate", type=float, default=0.5, help="Learning rate of plain gradient descent."
    )
    parser.add_argument(
        "--wrong",
        type=float,
        default=40.0,
        help="How confidently wrong the start is: the norm of the initial weights, which "
        "point against those of a good model.",
    )
    parser.add_argument("--seed", type=int, default=0, help="Seed of the train/test split.")
    parser.add_argument(
        "--plot",
        default=DEFAULT_PLOT,
        help="Where to write the PNG of the gradient and training curves (its folder is "
        "created if needed); '' writes no plot.",
    )
    args = parser.parse_args(argv)

    describe_backend()
    x = jnp.linspace(-10.0, 6.0, 321)
    grad_ce, grad_mse = gradient_curves(x)
    for v in (-10.0, -5.0, 0.0, 3.0):
        i = int(np.argmin(np.abs(np.asarray(x) - v)))
        print(f"logit {v:6.1f} (p = {float(jax.nn.sigmoid(v)):.5f}, label 1): "
              f"CE gradient {grad_ce[i]:+.4f}, MSE gradient {grad_mse[i]:+.6f}")  # fmt: skip

    curves = {fn.__name__: train_curves(fn, args.steps, args.learning_rate, args.seed, args.wrong)
              for fn in (cross_entropy, squared_error)}  # fmt: skip
    for name, (losses, accuracies) in curves.items():
        print(
            f"{name:>14s}: test accuracy after {args.steps} steps {accuracies[-1]:.3f} "
            f"(log loss {losses[-1]:.3f})"
        )
    if args.plot:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(11, 3.6), dpi=100)
        a, b, c = fig.subplots(1, 3)
        a.plot(x, -grad_ce, label="cross-entropy: 1 - p")
        a.plot(x, -grad_mse, label="squared error: 2 (1 - p) p (1 - p)")
        a.set_xlabel("logit x of a positive example (p = sigmoid(x))")
        a.set_ylabel("size of the gradient -dL/dx")
        a.set_title("The push a wrong prediction gets")
        a.legend(fontsize=8, loc="upper right")
        for name, (losses, accuracies) in curves.items():
            b.plot(losses, label=name)
            c.plot(accuracies, label=name)
        b.set_yscale("log")
        b.set_xlabel("step")
        b.set_ylabel("training log loss")
        b.set_title("Training from a confidently wrong start")
        c.set_xlabel("step")
        c.set_ylabel("test accuracy")
        c.set_title("Breast-cancer logistic regression")
        b.legend(fontsize=8)
        c.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(output_path(args.plot))
        print(f"wrote {args.plot}")
    return {name: accuracies[-1] for name, (_, accuracies) in curves.items()}


if __name__ == "__main__":
    main()
