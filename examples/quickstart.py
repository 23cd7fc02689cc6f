"""Quickstart: a Flax (NNX) + Optax classifier on handwritten digits, trained with
jaxloss, then the per-example loss histogram of the training and test sets.

    python examples/quickstart.py                  # about half a minute on 2 CPU cores;
                                                   # writes outputs/loss_histogram.png
    python examples/quickstart.py --steps 5        # smoke run
    python examples/quickstart.py --plot hist.png  # where the histogram goes ('' for none)
"""

from __future__ import annotations

import os
import sys

import jax.numpy as jnp
from flax import nnx

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _shared import (  # noqa: E402
    MLP,
    OUTPUT_DIR,
    accuracy,
    describe_backend,
    load_digits,
    make_parser,
    output_path,
    train,
)

import jaxloss  # noqa: E402
from jaxloss import diagnostics  # noqa: E402

DEFAULT_PLOT = str(OUTPUT_DIR / "loss_histogram.png")
"""Where the histogram goes unless ``--plot`` says otherwise."""


def main(argv=None) -> dict:
    parser = make_parser(__doc__, __file__)
    parser.add_argument(
        "--steps",
        type=int,
        default=1500,
        help="Number of training steps (Adam on minibatches of 128 examples).",
    )
    parser.add_argument("--hidden", type=int, default=128, help="Width of the MLP's hidden layer.")
    parser.add_argument("--learning-rate", type=float, default=3e-3, help="Adam's learning rate.")
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="Seed of the train/test split, the initialization and the minibatches.",
    )
    parser.add_argument(
        "--plot",
        default=DEFAULT_PLOT,
        help="Where to write the PNG of the training and test loss histograms "
        "(its folder is created if needed); '' writes no plot.",
    )
    args = parser.parse_args(argv)

    describe_backend()
    x_train, y_train, x_test, y_test = load_digits(args.seed)
    model = MLP([64, args.hidden, 10], rngs=nnx.Rngs(args.seed))

    def loss_fn(model, x, y):
        return jaxloss.sparse_categorical_cross_entropy(model(x), y, reduction="mean")

    history = train(
        model,
        loss_fn,
        x_train,
        y_train,
        steps=args.steps,
        learning_rate=args.learning_rate,
        seed=args.seed,
    )
    every = max(1, len(history) // 5)
    for i in range(0, len(history), every):
        print(f"step {i:5d}  loss {history[i]:.4f}")
    print(f"step {len(history) - 1:5d}  loss {history[-1]:.4f}")

    # Per-example losses: the distribution, not just its mean.
    train_losses = jaxloss.sparse_categorical_cross_entropy(model(jnp.asarray(x_train)), y_train)
    test_losses = jaxloss.sparse_categorical_cross_entropy(model(jnp.asarray(x_test)), y_test)
    summary = diagnostics.compare_loss_distributions(train_losses, test_losses)
    result = {
        "train_accuracy": accuracy(model, x_train, y_train),
        "test_accuracy": accuracy(model, x_test, y_test),
        "final_loss": history[-1],
        "summary": summary,
    }
    print(f"accuracy: train {result['train_accuracy']:.3f}, test {result['test_accuracy']:.3f}")
    print(summary)
    if args.plot:
        diagnostics.plot_loss_histograms(
            {"train": train_losses, "test": test_losses},
            str(output_path(args.plot)),
            title="Digits MLP: per-example cross-entropy",
            log_y=True,
        )
        print(f"wrote {args.plot}")
    return result


if __name__ == "__main__":
    main()
