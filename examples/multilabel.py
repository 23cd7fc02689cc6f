"""Multi-label classification: four independent yes/no attributes of each digit (drawn
with a loop? prime? a zero? an eight?), one sigmoid output each, trained with
``sigmoid_cross_entropy`` with and without ``pos_weight`` (negatives over positives per
label), which trades precision for recall on the rarer labels.

    python examples/multilabel.py            # about half a minute on 2 CPU cores
    python examples/multilabel.py --steps 5  # smoke run
"""

from __future__ import annotations

import os
import sys

import jax.numpy as jnp
import numpy as np
from flax import nnx

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _shared import MLP, describe_backend, load_digits, make_parser, train  # noqa: E402

import jaxloss  # noqa: E402

LABELS = ("has a loop", "prime", "is zero", "is eight")
ATTRIBUTES = np.array(
    [  # loop, prime, zero, eight  for the digits 0..9
        [1, 0, 1, 0], [0, 0, 0, 0], [0, 1, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0],
        [0, 1, 0, 0], [1, 0, 0, 0], [0, 1, 0, 0], [1, 0, 0, 1], [1, 0, 0, 0],
    ],
    np.float32,
)  # fmt: skip


def main(argv=None) -> dict:
    parser = make_parser(__doc__, __file__)
    parser.add_argument(
        "--steps", type=int, default=300, help="Training steps of each of the two models."
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="Seed of the train/test split, the initialization and the minibatches.",
    )
    args = parser.parse_args(argv)

    describe_backend()
    x_train, digits_train, x_test, digits_test = load_digits(args.seed)
    z_train, z_test = ATTRIBUTES[digits_train], ATTRIBUTES[digits_test]
    positives = z_train.mean(0)
    pos_weight = ((1 - positives) / positives).astype(np.float32)
    print(
        "share of positives per label:", {k: round(float(v), 2) for k, v in zip(LABELS, positives)}
    )

    results = {}
    for name, weight in (("plain", None), ("pos_weight", pos_weight)):
        model = MLP([64, 64, len(LABELS)], rngs=nnx.Rngs(args.seed))

        def loss_fn(model, x, z, weight=weight):
            return jaxloss.sigmoid_cross_entropy(model(x), z, pos_weight=weight,
                                                 reduction="mean")  # fmt: skip

        train(model, loss_fn, x_train, z_train, steps=args.steps, seed=args.seed, desc=name)
        predicted = np.asarray(model(jnp.asarray(x_test)) > 0)
        truth = z_test > 0.5
        recall = (predicted & truth).sum(0) / truth.sum(0)
        precision = (predicted & truth).sum(0) / np.maximum(predicted.sum(0), 1)
        results[name] = {"recall": recall, "precision": precision,
                         "exact_match": float(np.mean(np.all(predicted == truth, 1)))}  # fmt: skip

    print(f"{'':>12s}" + "".join(f"{label:>22s}" for label in LABELS) + "   exact match")
    for name, r in results.items():
        cells = "".join(
            f"   P {p:.2f} / R {q:.2f}    " for p, q in zip(r["precision"], r["recall"])
        )
        print(f"{name:>12s}{cells}   {r['exact_match']:.3f}")
    return {name: r["exact_match"] for name, r in results.items()}


if __name__ == "__main__":
    main()
