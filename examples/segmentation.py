"""Segmentation: label every pixel of the 8x8 digits as background or as the ink of its
digit (11 classes), with a small Flax (NNX) conv net trained on weighted cross-entropy
plus the Dice loss; faint pixels on the strokes' edges are labelled 255 and ignored, as
Pascal VOC does with object borders.

    python examples/segmentation.py                # about 20 seconds on 2 CPU cores;
                                                   # writes outputs/segmentation.png
    python examples/segmentation.py --steps 3      # smoke run
    python examples/segmentation.py --dice-weight 0 --plot ''  # cross-entropy alone
"""

from __future__ import annotations

import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _shared import (  # noqa: E402
    OUTPUT_DIR,
    describe_backend,
    load_digits,
    make_parser,
    output_path,
    train,
)

import jaxloss  # noqa: E402

IGNORE = 255  # Pascal VOC's "void" label
NUM_CLASSES = 11  # background, then the ink of the digits 0..9
DEFAULT_PLOT = str(OUTPUT_DIR / "segmentation.png")
"""Where the figure goes unless ``--plot`` says otherwise."""


def pixel_labels(images: np.ndarray, digits: np.ndarray, ink: float) -> np.ndarray:
    """``[N, 8, 8]`` labels: 0 for blank pixels, ``1 + digit`` for pixels at least ``ink``
    dark, and ``IGNORE`` for the faint pixels in between (the strokes' blurry edges)."""
    labels = np.where(images >= ink, 1 + digits[:, None, None], 0)
    return np.where((images > 0) & (images < ink), IGNORE, labels).astype(np.int32)


class SegNet(nnx.Module):
    """Three 3x3 convolutions, a global-context feature (the image's mean feature, so
    every pixel can see which digit it belongs to), and a 1x1 classifier: ``[B, H, W, 1]``
    images to ``[B, H, W, C]`` logits."""

    def __init__(self, width: int, num_classes: int, *, rngs: nnx.Rngs):
        self.convs = nnx.List(
            [
                nnx.Conv(1, width, (3, 3), rngs=rngs),
                nnx.Conv(width, width, (3, 3), rngs=rngs),
                nnx.Conv(width, width, (3, 3), rngs=rngs),
            ]
        )
        self.context = nnx.Linear(width, width, rngs=rngs)
        self.head = nnx.Conv(width, num_classes, (1, 1), rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        for conv in self.convs:
            x = jax.nn.relu(conv(x))
        context = self.context(jnp.mean(x, axis=(1, 2), keepdims=True))
        return self.head(jax.nn.relu(x + context))


def median_frequency_weights(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """``median(f) / f_c`` from the class frequencies ``f`` of the labelled pixels (Eigen
    and Fergus, 2015): rare classes weigh more, the median class weighs 1."""
    counts = np.bincount(labels[labels != IGNORE], minlength=num_classes).astype(np.float64)
    frequency = counts / counts.sum()
    return (np.median(frequency) / np.maximum(frequency, 1e-12)).astype(np.float32)


def dice_targets(logits: jax.Array, labels: jax.Array):
    """Softmax probabilities and one-hot targets, both zeroed at ignored pixels, so those
    pixels add nothing to the Dice loss's sums."""
    valid = (labels != IGNORE)[..., None]
    probs = jax.nn.softmax(logits, axis=-1) * valid
    targets = jax.nn.one_hot(jnp.where(valid[..., 0], labels, 0), logits.shape[-1]) * valid
    return probs, targets


def segmentation_loss(logits, labels, class_weights, dice_weight):
    """Weighted cross-entropy over the labelled pixels plus ``dice_weight`` times the
    Dice loss of the foreground classes, pooled over the batch (``axis=(0, 1, 2)``)."""
    ce = jaxloss.sparse_categorical_cross_entropy(
        logits, labels, ignore_index=IGNORE, class_weights=class_weights, reduction="mean"
    )
    probs, targets = dice_targets(logits, labels)
    dice = jaxloss.dice_loss(
        probs, targets, apply_softmax=False, ignore_background=True, axis=(0, 1, 2)
    )
    return ce + dice_weight * dice


@jax.jit
def channels_first_losses(logits, labels, class_weights):
    """The cross-entropy and Dice losses from channels-last ``[B, H, W, C]`` logits and
    from the same logits channels-first, ``[B, C, H, W]``: the cross-entropy takes the
    class axis as ``axis=1``; the Dice loss (optax's convention) wants the classes last,
    so they are moved there. Returns ``((ce_last, ce_first), (dice_last, dice_first))``."""
    channels_first = jnp.moveaxis(logits, -1, 1)
    ce = [
        jaxloss.sparse_categorical_cross_entropy(
            x, labels, axis=axis, ignore_index=IGNORE, class_weights=class_weights, reduction="mean"
        )
        for x, axis in ((logits, -1), (channels_first, 1))
    ]
    dice = [
        jaxloss.dice_loss(*dice_targets(x, labels), apply_softmax=False, axis=(0, 1, 2))
        for x in (logits, jnp.moveaxis(channels_first, 1, -1))
    ]
    return ce, dice


def evaluate(predicted: np.ndarray, labels: np.ndarray, num_classes: int) -> dict:
    """Pixel accuracy and per-class IoU over the labelled pixels (NaN for a class that is
    neither predicted nor present)."""
    keep = labels != IGNORE
    p, y = predicted[keep], labels[keep]
    intersection = np.bincount(y[p == y], minlength=num_classes)
    union = np.bincount(p, minlength=num_classes) + np.bincount(y, minlength=num_classes)
    union = union - intersection
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, intersection / union, np.nan)
    return {
        "pixel_accuracy": float(np.mean(p == y)),
        "iou": iou,
        "mean_iou": float(np.nanmean(iou)),
    }


def plot(path, images, labels, predicted, count=6):
    """Images, targets and predictions of the first ``count`` test digits."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, count, figsize=(1.6 * count, 5))
    shown = np.ma.masked_equal(labels, IGNORE)  # ignored pixels left blank
    for i in range(count):
        axes[0, i].imshow(images[i], cmap="gray_r", vmin=0, vmax=1)
        axes[1, i].imshow(shown[i], cmap="tab20", vmin=0, vmax=19, interpolation="nearest")
        axes[2, i].imshow(predicted[i], cmap="tab20", vmin=0, vmax=19, interpolation="nearest")
    for row, title in enumerate(("image", "target (blank: 255)", "prediction")):
        axes[row, 0].set_ylabel(title)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> dict:
    parser = make_parser(__doc__, __file__)
    parser.add_argument(
        "--steps",
        type=int,
        default=600,
        help="Number of training steps (Adam on minibatches of 64 images).",
    )
    parser.add_argument(
        "--width", type=int, default=32, help="Number of channels of each convolution."
    )
    parser.add_argument(
        "--dice-weight",
        type=float,
        default=1.0,
        help="Weight of the Dice loss added to the cross-entropy; 0 trains on the "
        "cross-entropy alone.",
    )
    parser.add_argument(
        "--ink",
        type=float,
        default=0.5,
        help="Darkness (0 to 1) from which a pixel is ink; fainter non-blank pixels are "
        "labelled 255 and ignored.",
    )
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
        help="Where to write the PNG of test images, targets and predictions (its folder "
        "is created if needed); '' writes no plot.",
    )
    args = parser.parse_args(argv)

    describe_backend()
    x_train, d_train, x_test, d_test = load_digits(args.seed)
    x_train, x_test = x_train.reshape(-1, 8, 8), x_test.reshape(-1, 8, 8)
    y_train = pixel_labels(x_train, d_train, args.ink)
    y_test = pixel_labels(x_test, d_test, args.ink)
    weights = median_frequency_weights(y_train, NUM_CLASSES)
    print(
        f"pixels: {np.mean(y_train == 0):.0%} background, "
        f"{np.mean((y_train > 0) & (y_train < IGNORE)):.0%} ink, "
        f"{np.mean(y_train == IGNORE):.0%} ignored (label {IGNORE})"
    )
    print("class weights (median frequency):", [round(float(w), 2) for w in weights])

    model = SegNet(args.width, NUM_CLASSES, rngs=nnx.Rngs(args.seed))

    def loss_fn(model, x, y):
        return segmentation_loss(model(x[..., None]), y, weights, args.dice_weight)

    history = train(
        model,
        loss_fn,
        x_train,
        y_train,
        steps=args.steps,
        batch_size=64,
        learning_rate=args.learning_rate,
        seed=args.seed,
        desc="segmentation",
    )
    every = max(1, len(history) // 5)
    for i in range(0, len(history), every):
        print(f"step {i:5d}  loss {history[i]:.4f}")
    print(f"step {len(history) - 1:5d}  loss {history[-1]:.4f}")

    logits = model(jnp.asarray(x_test[..., None]))
    (test_ce, ce_first), (test_dice, dice_first) = channels_first_losses(logits, y_test, weights)
    np.testing.assert_allclose(ce_first, test_ce, rtol=1e-5)
    np.testing.assert_allclose(dice_first, test_dice, rtol=1e-5)
    test_ce, test_dice = float(test_ce), float(test_dice)
    print(
        f"test cross-entropy {test_ce:.4f}, Dice loss {test_dice:.4f} "
        f"(the same from channels-first logits)"
    )
    predicted = np.asarray(jnp.argmax(logits, axis=-1))
    scores = evaluate(predicted, y_test, NUM_CLASSES)
    names = ["background"] + [f"digit {d}" for d in range(10)]
    print(f"{'class':>12s}  IoU")
    for name, iou in zip(names, scores["iou"]):
        print(f"{name:>12s}  {iou:.3f}")
    print(f"pixel accuracy {scores['pixel_accuracy']:.3f}, mean IoU {scores['mean_iou']:.3f}")
    if args.plot:
        path = output_path(args.plot)
        plot(path, x_test, y_test, predicted)
        print(f"wrote {path}")
    return {
        "final_loss": history[-1],
        "test_cross_entropy": test_ce,
        "test_dice_loss": test_dice,
        **scores,
    }


if __name__ == "__main__":
    main()
