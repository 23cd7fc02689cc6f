"""Imbalanced classes: the same digits with five classes made rare, trained with the
plain cross-entropy, with inverse-frequency ``class_weights``, and with the focal loss;
per-class recall on a balanced test set shows what each buys.

    python examples/imbalanced.py             # about a minute on 2 CPU cores
    python examples/imbalanced.py --steps 5   # smoke run
"""

from __future__ import annotations

import os
import sys

import numpy as np
from flax import nnx

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _shared import (  # noqa: E402
    MLP,
    describe_backend,
    load_digits,
    make_parser,
    recall_per_class,
    train,
)

import jaxloss  # noqa: E402


def make_imbalanced(x, y, rare_classes, keep, seed):
    """Keeps a fraction ``keep`` of the training examples of each rare class."""
    rng = np.random.default_rng(seed)
    drop = np.isin(y, rare_classes) & (rng.random(len(y)) > keep)
    return x[~drop], y[~drop]


def main(argv=None) -> dict:
    parser = make_parser(__doc__, __file__)
    parser.add_argument(
        "--steps", type=int, default=800, help="Training steps of each of the three models."
    )
    parser.add_argument(
        "--keep",
        type=float,
        default=0.06,
        help="Share of the training examples of each rare class (the digits 0 to 4) that is kept.",
    )
    parser.add_argument(
        "--gamma", type=float, default=2.0, help="Focusing exponent gamma of the focal loss."
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="Seed of the train/test split, the subsampling, the initializations and the "
        "minibatches.",
    )
    args = parser.parse_args(argv)

    describe_backend()
    x_train, y_train, x_test, y_test = load_digits(args.seed)
    rare = np.arange(5)
    x_train, y_train = make_imbalanced(x_train, y_train, rare, args.keep, args.seed)
    counts = np.bincount(y_train, minlength=10)
    print("training examples per class:", counts.tolist())
    # inverse frequency, normalized so that the average example weighs 1
    weights = (len(y_train) / (10 * np.maximum(counts, 1))).astype(np.float32)

    losses = {
        "plain": lambda logits, y: jaxloss.sparse_categorical_cross_entropy(
            logits, y, reduction="mean"
        ),
        "class_weights": lambda logits, y: jaxloss.sparse_categorical_cross_entropy(
            logits, y, class_weights=weights, reduction="mean"
        ),
        "focal": lambda logits, y: jaxloss.softmax_focal_loss(
            logits, y, gamma=args.gamma, alpha=weights, reduction="mean"
        ),
    }
    results = {}
    for name, loss in losses.items():
        model = MLP([64, 64, 10], rngs=nnx.Rngs(args.seed))
        train(
            model,
            lambda m, x, y, loss=loss: loss(m(x), y),
            x_train,
            y_train,
            steps=args.steps,
            seed=args.seed,
            desc=name,
        )
        results[name] = recall_per_class(model, x_test, y_test)

    print(f"{'recall':>14s} " + " ".join(f"{c:>5d}" for c in range(10)) + "   rare  common")
    for name, recall in results.items():
        print(
            f"{name:>14s} "
            + " ".join(f"{r:5.2f}" for r in recall)
            + f"   {recall[rare].mean():.3f}  {np.delete(recall, rare).mean():.3f}"
        )
    return {name: float(r[rare].mean()) for name, r in results.items()}


if __name__ == "__main__":
    main()
