"""Knowledge distillation: a small student learns from a larger teacher's softened
predictions with ``kl_divergence_with_logits`` at a temperature, next to the same
student trained on the labels alone.

    loss = (1 - a) CE(student, labels) + a T^2 KL(softmax(teacher/T) || softmax(student/T))

    python examples/distillation.py            # about a minute on 2 CPU cores
    python examples/distillation.py --steps 5  # smoke run
"""

from __future__ import annotations

import os
import sys

import jax
import jax.numpy as jnp
from flax import nnx

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _shared import MLP, accuracy, describe_backend, load_digits, make_parser, train  # noqa: E402

import jaxloss  # noqa: E402


def main(argv=None) -> dict:
    parser = make_parser(__doc__, __file__)
    parser.add_argument(
        "--steps",
        type=int,
        default=1000,
        help="Training steps of each of the three models (the teacher, the student alone and "
        "the distilled student).",
    )
    parser.add_argument(
        "--temperature",
        type=float,
        default=4.0,
        help="Temperature T that softens both the teacher's and the student's predictions in "
        "the KL term.",
    )
    parser.add_argument(
        "--alpha",
        type=float,
        default=0.9,
        help="Weight a of the KL term in the distillation loss; the cross-entropy on the labels "
        "gets 1 - a.",
    )
    parser.add_argument(
        "--train-fraction",
        type=float,
        default=0.1,
        help="Share of the training set the two students see (at least 10 examples); the "
        "teacher sees all of it.",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="Seed of the train/test split, the initializations and the minibatches.",
    )
    args = parser.parse_args(argv)

    describe_backend()
    x_train, y_train, x_test, y_test = load_digits(args.seed)

    def ce(logits, y):
        return jaxloss.sparse_categorical_cross_entropy(logits, y, reduction="mean")

    teacher = MLP([64, 256, 256, 10], rngs=nnx.Rngs(args.seed))
    train(teacher, lambda m, x, y: ce(m(x), y), x_train, y_train, steps=args.steps,
          seed=args.seed, desc="teacher")  # fmt: skip

    # The student sees a small part of the training set, where soft targets help most.
    n = max(10, int(args.train_fraction * len(x_train)))
    xs, ys = x_train[:n], y_train[:n]
    teacher_logits = jax.lax.stop_gradient(teacher(jnp.asarray(xs)))
    index = jnp.arange(n)
    t = args.temperature

    alone = MLP([64, 16, 10], rngs=nnx.Rngs(args.seed + 1))
    train(alone, lambda m, x, y: ce(m(x), y), xs, ys, steps=args.steps, seed=args.seed,
          desc="student alone")  # fmt: skip

    def distill_loss(model, x, batch):
        y, rows = batch[:, 0], batch[:, 1]
        logits = model(x)
        kl = jaxloss.kl_divergence_with_logits(
            logits, teacher_logits[rows], temperature=t, reduction="mean"
        )
        return (1 - args.alpha) * ce(logits, y) + args.alpha * t**2 * kl

    distilled = MLP([64, 16, 10], rngs=nnx.Rngs(args.seed + 1))
    batch = jnp.stack([jnp.asarray(ys), index], 1)  # labels and rows travel together
    train(distilled, distill_loss, xs, batch, steps=args.steps, seed=args.seed,
          desc="student distilled")  # fmt: skip

    result = {
        "teacher": accuracy(teacher, x_test, y_test),
        "student_alone": accuracy(alone, x_test, y_test),
        "student_distilled": accuracy(distilled, x_test, y_test),
    }
    print(
        f"test accuracy: teacher {result['teacher']:.3f}, student alone "
        f"{result['student_alone']:.3f}, distilled student {result['student_distilled']:.3f}"
    )
    return result


if __name__ == "__main__":
    main()
