"""Dice and Tversky losses for segmentation: the overlap of predicted and target masks.

Per class ``c``, with the sums taken over the pixels (the ``axis`` axes):

    I_c = sum_i p_ic t_ic    P_c = sum_i p_ic    T_c = sum_i t_ic
    loss_c = 1 - (I_c + s) / (I_c + alpha (P_c - I_c) + beta (T_c - I_c) + s)

``alpha = beta = 1/2`` is the Dice loss ``1 - (2 I + 2 s) / (P + T + 2 s)``, ``alpha = beta
= 1`` the Jaccard (IoU) loss, other values the Tversky loss. The functions are drop-ins
for optax's (``optax.losses.dice_loss``, ``binary_dice_loss`` and
``multiclass_generalized_dice_loss``, optax 0.2.8): the same names, signatures, shapes and
values, except where optax gives a finite number for invalid input, NaN at a defined
point, or an error under ``jit`` (listed in :func:`dice_loss`).

Derivatives are JAX's autodiff of this formula: a ratio of sums, whose autodiff is exact,
cheap and works in every mode. The one guard is the double ``where`` at ``0 / 0`` (no
prediction and no target for a class, with ``smooth = 0``), where the loss is 0 with zero
gradient, so that every derivative is finite wherever the value is.
"""

from __future__ import annotations

import dataclasses
import functools
import operator
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from . import _checks, _numerics

# optax's constant in the generalized Dice weights 1 / (T_c**2 + eps).
_GENERALIZED_EPS = 1e-7


@dataclasses.dataclass(frozen=True)
class _Dice:
    fn: str  # the public function's name, for error messages
    axes: tuple[int, ...]  # the summed (pixel) axes, non-negative; never the class axis
    activation: bool  # softmax over the classes (sigmoid for one channel) first
    ignore_background: bool
    reduction: str  # over the class axis
    checks: bool


def _probabilities(x: jax.Array, activation: bool) -> jax.Array:
    if not activation:
        return x + _numerics.nan_outside_unit(x)  # a probability outside [0, 1] is NaN
    return jax.nn.sigmoid(x) if x.shape[-1] == 1 else jax.nn.softmax(x, axis=-1)


def _nonnegative(v: jax.Array, dtype) -> jax.Array:
    """``v`` in ``dtype``, NaN where negative or not finite (a run-time value)."""
    return _numerics.nan_if_negative(v.astype(dtype))


@functools.partial(jax.jit, static_argnums=0)
def _dice(k: _Dice, predictions, targets, class_weights, smooth, alpha, beta):
    """The per-class losses ``[..., C]`` (``axes`` summed), weighted, then reduced over
    the classes."""
    if k.checks:
        if not k.activation:
            _checks.check_in_unit_interval(k.fn, "prediction", predictions)
        _checks.check_in_unit_interval(k.fn, "target", targets)
        for name, v in (
            ("class_weights", class_weights),
            ("smooth", smooth),
            ("alpha", alpha),
            ("beta", beta),
        ):
            if v is not None:
                _checks.check_nonnegative_values(k.fn, name, v)
    dtype = _numerics.compute_dtype(predictions)
    p = _probabilities(predictions.astype(dtype), k.activation)
    t = targets.astype(dtype)
    t = t + _numerics.nan_outside_unit(t)  # a target outside [0, 1] is NaN
    intersection = jnp.sum(p * t, k.axes)
    p_sum = jnp.sum(p, k.axes)
    t_sum = jnp.sum(t, k.axes)
    s = _nonnegative(smooth, dtype)
    numerator = intersection + s
    denominator = (
        intersection
        + _nonnegative(alpha, dtype) * (p_sum - intersection)
        + _nonnegative(beta, dtype) * (t_sum - intersection)
        + s
    )
    # With p, t in [0, 1] and alpha, beta, s >= 0, the denominator is at least I + s, so
    # it is 0 only where the numerator is 0 too: s = 0 and nothing to count (no overlap,
    # and no false positive or negative that alpha or beta weighs). That 0 / 0 is read
    # as a perfect match, loss 0; the double where keeps its gradient 0 rather than NaN.
    empty = denominator == 0
    coefficient = jnp.where(empty, 1, numerator / jnp.where(empty, 1, denominator))
    loss = 1 - coefficient
    if class_weights is not None:
        loss = loss * _numerics.valid_weights(class_weights.astype(dtype))
    if k.ignore_background and loss.shape[-1] > 1:
        loss = loss[..., 1:]
    # optax's reduction over the classes: a plain mean (or sum), the class weights
    # multiplying each term without entering the denominator. It keeps the batch axes,
    # so it is not the shared example-weighted reduction of ``_reduction``.
    if k.reduction == "mean":
        return jnp.mean(loss, axis=-1)
    if k.reduction == "sum":
        return jnp.sum(loss, axis=-1)
    return loss


@functools.partial(jax.jit, static_argnums=0)
def _generalized_dice(k: _Dice, predictions, targets, smooth):
    """optax's generalized Dice: per-class weights ``1 / (T_c**2 + eps)`` over the whole
    batch, normalized to sum to ``C``, then the mean of the weighted per-class losses."""
    dtype = _numerics.compute_dtype(predictions)
    t = targets.astype(dtype)
    frequencies = jnp.sum(t, axis=tuple(range(t.ndim - 1)))
    weights = 1 / (frequencies**2 + _GENERALIZED_EPS)
    weights = weights / jnp.sum(weights) * weights.shape[0]
    half = jnp.asarray(0.5, dtype)
    return jnp.mean(_dice(k, predictions, targets, weights, smooth, half, half))


# --------------------------------------------------------------------------------------
# Argument checks.


def _prepare(fn: str, predictions, targets, *, add_channel: bool, given=None):
    """Both arrays, checked, with optax's single-channel rule: when one of them has one
    axis fewer, it gets a trailing channel axis of size 1. Returns ``[..., C]`` arrays.
    ``given``: the shapes the caller passed, for the error message (default: these)."""
    predictions = _checks.as_array(predictions, "predictions", fn)
    targets = _checks.as_array(targets, "targets", fn)
    _checks.check_floating(predictions, "predictions", fn)
    _checks.check_real(targets, "targets", fn)
    given = given or (tuple(predictions.shape), tuple(targets.shape))
    if add_channel:
        if predictions.ndim == targets.ndim - 1:
            predictions = predictions[..., None]
        if targets.ndim == predictions.ndim - 1:
            targets = targets[..., None]
    if predictions.shape != targets.shape:
        hint = "; a single channel may be left out of either" if add_channel else ""
        raise ValueError(
            f"{fn}: targets has shape {given[1]} but predictions have shape {given[0]}; "
            f"targets needs the predictions' shape [..., C] (one-hot targets: "
            f"jax.nn.one_hot(labels, C)){hint}"
        )
    _checks.check_rank(predictions, "predictions", fn)
    return predictions, targets


def _summed_axes(axis, shape: tuple[int, ...], fn: str) -> tuple[int, ...]:
    """The pixel axes to sum over, non-negative: optax's default (every axis but the
    first and the last) for None; never the class axis (the last)."""
    ndim = len(shape)
    if axis is None:
        return tuple(range(1, ndim - 1))
    bad = TypeError(f"{fn}: axis must be None, an int or a sequence of ints, got {axis!r}")
    if isinstance(axis, bool):
        raise bad
    if isinstance(axis, int | np.integer):
        axes = (axis,)
    elif isinstance(axis, Sequence | np.ndarray):
        axes = tuple(np.asarray(axis).ravel().tolist()) if isinstance(axis, np.ndarray) else axis
    else:
        raise bad
    out = []
    for a in axes:
        if isinstance(a, bool):
            raise bad
        try:
            a = operator.index(a)
        except TypeError as e:
            raise bad from e
        if not -ndim <= a < ndim:
            raise ValueError(
                f"{fn}: axis={axis!r} is out of range for predictions of shape {shape}"
            )
        out.append(a % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"{fn}: axis={axis!r} repeats an axis")
    if ndim - 1 in out:
        raise ValueError(
            f"{fn}: axis={axis!r} includes the class axis {ndim - 1} of predictions of shape "
            f"{shape}; axis names the pixel axes to sum over, and the classes are always "
            f"the last axis (move a channels-first class axis there with jnp.moveaxis)"
        )
    return tuple(out)


def _parameter(value, name: str, fn: str, shape: tuple[int, ...]) -> jax.Array:
    """``smooth``, ``alpha`` or ``beta``: a number or an array broadcastable to the
    per-class losses; a value known at trace time must be finite and ``>= 0``."""
    _checks.check_weights(value, name, fn)
    v = _checks.check_broadcastable(value, shape, name, fn, what="per-class losses")
    _checks.check_real(v, name, fn)
    return v if jnp.issubdtype(v.dtype, jnp.floating) else v.astype(jnp.float32)


def _class_weights(class_weights, num_classes: int, shape, fn: str) -> jax.Array | None:
    if class_weights is None:
        return None
    _checks.check_weights(class_weights, "class_weights", fn)
    cw = _checks.as_array(class_weights, "class_weights", fn)
    _checks.check_real(cw, "class_weights", fn)
    if cw.shape != (num_classes,):
        raise ValueError(
            f"{fn}: class_weights has shape {tuple(cw.shape)} but predictions of shape "
            f"{shape} have {num_classes} classes; it needs shape ({num_classes},)"
        )
    return cw if jnp.issubdtype(cw.dtype, jnp.floating) else cw.astype(jnp.float32)


def _dice_loss(
    fn,
    predictions,
    targets,
    *,
    class_weights,
    smooth,
    alpha,
    beta,
    apply_softmax,
    reduction,
    ignore_background,
    axis,
    given=None,
):
    predictions, targets = _prepare(fn, predictions, targets, add_channel=True, given=given)
    shape = tuple(predictions.shape)
    axes = _summed_axes(axis, shape, fn)
    per_class = tuple(d for i, d in enumerate(shape) if i not in axes)
    kernel = _Dice(
        fn=fn,
        axes=axes,
        activation=bool(apply_softmax),
        ignore_background=bool(ignore_background),
        reduction=_checks.check_reduction(reduction, fn),
        checks=_checks.checks_enabled(),
    )
    return _dice(
        kernel,
        predictions,
        targets,
        _class_weights(class_weights, shape[-1], shape, fn),
        _parameter(smooth, "smooth", fn, per_class),
        _parameter(alpha, "alpha", fn, per_class),
        _parameter(beta, "beta", fn, per_class),
    )


# --------------------------------------------------------------------------------------
# Public functions.


def dice_loss(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    class_weights: ArrayLike | None = None,
    smooth: ArrayLike = 1.0,
    alpha: ArrayLike = 0.5,
    beta: ArrayLike = 0.5,
    apply_softmax: bool = True,
    reduction: str = "mean",
    ignore_background: bool = False,
    axis: int | Sequence[int] | None = None,
) -> jax.Array:
    r"""Soft Dice (and Tversky) loss for segmentation, per class, then over the classes.

    .. math::
        I_c = \sum_i p_{ic} t_{ic}, \quad P_c = \sum_i p_{ic}, \quad T_c = \sum_i t_{ic},
        \qquad
        \ell_c = w_c \left(1 - \frac{I_c + s}
          {I_c + \alpha (P_c - I_c) + \beta (T_c - I_c) + s}\right)

    where ``i`` runs over the pixels (the ``axis`` axes), ``p`` are the predicted
    probabilities (``softmax`` of the logits over the class axis, or ``sigmoid`` for a
    single channel; the predictions themselves with ``apply_softmax=False``), ``t`` the
    targets, ``P_c - I_c`` the soft false positives and ``T_c - I_c`` the soft false
    negatives. ``alpha = beta = 1/2`` is the Dice loss
    :math:`1 - (2 I_c + 2 s) / (P_c + T_c + 2 s)`, ``alpha = beta = 1`` the Jaccard (IoU)
    loss; ``alpha > beta`` penalizes false positives more, ``beta > alpha`` false
    negatives (Tversky). ``alpha = 0, beta = 1`` is one minus the recall, ``alpha = 1,
    beta = 0`` one minus the precision.

    The class axis is always the last (for channels-first predictions, move it there
    with ``jnp.moveaxis(x, 1, -1)``); ``axis`` names the axes summed over. To leave
    pixels out (Pascal VOC's label 255), set both their predicted probabilities and their
    targets to 0: they then add nothing to any sum.

    A drop-in for ``optax.losses.dice_loss`` (optax 0.2.8): the same signature, shapes
    and values, with these deliberate differences:

    * ``apply_softmax=False``: each probability must be in [0, 1] (NaN otherwise), but
      the channels need not sum to 1 (multi-label masks are allowed). optax checks the
      sum eagerly, which raises a ``TracerBoolConversionError`` under ``jit`` and rejects
      any single-channel probabilities.
    * A target outside [0, 1] gives NaN for its class (optax: a finite number). Wrap the
      call in :func:`jaxloss.checked` to raise an error naming the bad value.
    * ``smooth = 0`` with no prediction and no target for a class (``0 / 0``) gives
      loss 0 and zero gradient, a perfect match (optax: NaN).
    * Bad arguments raise at trace time, naming the argument and its shape: mismatched
      shapes, ``class_weights`` not of shape ``(C,)`` (optax broadcasts a ``(1,)``),
      an ``axis`` that includes the class axis (optax: an ``IndexError`` or a wrong
      result), an unknown ``reduction``, or a negative or non-finite ``smooth``,
      ``alpha``, ``beta`` or class weight given as a Python or NumPy value (given as a
      JAX array, NaN instead).
    * bfloat16/float16 predictions are computed in float32 and the loss is float32.

    Args:
      predictions: logits ``[..., C]`` (probabilities with ``apply_softmax=False``);
        ``[..., 1]`` or ``[...]`` for binary segmentation (one channel: sigmoid).
      targets: the predictions' shape, one-hot or soft in [0, 1] (``[...]`` for one
        channel); booleans and integers allowed.
      class_weights: ``[C]`` weights ``>= 0`` multiplying each class's loss (they do
        not enter the mean's denominator, as in optax).
      smooth: ``s >= 0``, added to the numerator and the denominator; a number or an
        array broadcastable to the per-class losses.
      alpha: weight ``>= 0`` of the false positives (same shapes as ``smooth``).
      beta: weight ``>= 0`` of the false negatives (same shapes as ``smooth``).
      apply_softmax: apply softmax (sigmoid for one channel) to the predictions.
      reduction: over the classes: ``"mean"``, ``"sum"``, or ``"none"`` for the
        per-class losses.
      ignore_background: drop class 0 after weighting (no effect for one channel).
      axis: int or sequence of ints, the pixel axes summed over; default every axis
        except the first (the batch) and the last (the classes). ``axis=()`` gives
        per-pixel losses; including axis 0 pools the batch.

    Returns:
      ``[...]`` (the axes that are neither summed nor the class axis: for ``[B, H, W,
      C]`` and the default ``axis``, shape ``[B]``), or ``[..., C]`` for ``"none"``
      (``C - 1`` classes with ``ignore_background``); float32 for 16-bit predictions.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxloss
      >>> # one image of four pixels, two classes, hard predictions:
      >>> # class 0: predicted at pixels 0, 2, 3, true at 0, 3: I = 2, P = 3, T = 2
      >>> # class 1: predicted at pixel 1,       true at 1, 2: I = 1, P = 1, T = 2
      >>> probs = jnp.array([[[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 0.0]]])
      >>> targets = jnp.array([[[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [1.0, 0.0]]])
      >>> # Dice 2I / (P + T): 4/5 and 2/3
      >>> print(jaxloss.dice_loss(probs, targets, smooth=0.0, apply_softmax=False,
      ...                         reduction="none"))
      [[0.2    0.3333]]
      >>> print(jaxloss.dice_loss(probs, targets, smooth=0.0, apply_softmax=False))
      [0.2667]
      >>> # smooth 1: (I + 1) / ((P + T) / 2 + 1) = 3/3.5 and 2/2.5
      >>> print(jaxloss.dice_loss(probs, targets, apply_softmax=False, reduction="none"))
      [[0.1429 0.2   ]]
      >>> # Tversky alpha = 0, beta = 1: one minus the recall, I / T = 1 and 1/2
      >>> print(jaxloss.dice_loss(probs, targets, smooth=0.0, alpha=0.0, beta=1.0,
      ...                         apply_softmax=False, reduction="none"))
      [[0.  0.5]]

    References:
      Milletari, Navab and Ahmadi, "V-Net: Fully Convolutional Neural Networks for
      Volumetric Medical Image Segmentation", 3DV 2016.

      Salehi, Erdogmus and Gholipour, "Tversky loss function for image segmentation
      using 3D fully convolutional deep networks", MLMI 2017.

      Sudre, Li, Vercauteren, Ourselin and Cardoso, "Generalised Dice overlap as a deep
      learning loss function for highly unbalanced segmentations", DLMIA 2017.
    """
    return _dice_loss(
        "dice_loss",
        predictions,
        targets,
        class_weights=class_weights,
        smooth=smooth,
        alpha=alpha,
        beta=beta,
        apply_softmax=apply_softmax,
        reduction=reduction,
        ignore_background=ignore_background,
        axis=axis,
    )


def binary_dice_loss(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    smooth: ArrayLike = 1.0,
    apply_sigmoid: bool = True,
) -> jax.Array:
    r"""Dice loss of one foreground mask: :func:`dice_loss` with one channel.

    .. math::
        \ell = 1 - \frac{2 \sum_i p_i t_i + 2 s}{\sum_i p_i + \sum_i t_i + 2 s},
        \qquad p_i = \sigma(x_i)

    summed over every axis but the first (the batch). A drop-in for
    ``optax.losses.binary_dice_loss`` (optax 0.2.8): predictions and targets of the same
    shape ``[...]`` get a channel axis unless their last axis has size 1 already, so a
    ``[B, H, W]`` mask whose width is 1 counts as ``[B, H, 1]`` (optax's rule). Unlike
    optax, ``apply_sigmoid=False`` works (optax's probability check rejects every
    single-channel input that is not all ones); probabilities or targets outside [0, 1]
    give NaN.

    Args:
      predictions: logits ``[...]`` or ``[..., 1]`` (probabilities with
        ``apply_sigmoid=False``).
      targets: 0/1 or soft targets in [0, 1], ``[...]`` or ``[..., 1]``.
      smooth: ``s >= 0``, as in :func:`dice_loss`.
      apply_sigmoid: apply the sigmoid to the predictions.

    Returns:
      ``[B]`` for ``[B, ...]`` inputs (the batch axis only; for 1-D inputs ``[N]``, one
      loss per element).

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxloss
      >>> logits = jnp.zeros((1, 4))  # p = 1/2 everywhere
      >>> mask = jnp.array([[1.0, 1.0, 0.0, 0.0]])  # I = 1, P = 2, T = 2
      >>> print(jaxloss.binary_dice_loss(logits, mask, smooth=0.0))  # 1 - 2/4
      [0.5]
      >>> print(jaxloss.binary_dice_loss(logits, mask))  # 1 - (2 + 2)/(4 + 2)
      [0.3333]

    References:
      Milletari, Navab and Ahmadi, "V-Net: Fully Convolutional Neural Networks for
      Volumetric Medical Image Segmentation", 3DV 2016.
    """
    fn = "binary_dice_loss"
    predictions = _checks.as_array(predictions, "predictions", fn)
    targets = _checks.as_array(targets, "targets", fn)
    given = (tuple(predictions.shape), tuple(targets.shape))
    if predictions.ndim == targets.ndim and predictions.ndim and predictions.shape[-1] != 1:
        predictions = predictions[..., None]
        targets = targets[..., None]
    return _dice_loss(
        fn,
        predictions,
        targets,
        class_weights=None,
        smooth=smooth,
        alpha=0.5,
        beta=0.5,
        apply_softmax=apply_sigmoid,
        reduction="mean",
        ignore_background=False,
        axis=None,
        given=given,
    )


def multiclass_generalized_dice_loss(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    smooth: ArrayLike = 1.0,
    apply_softmax: bool = True,
    ignore_background: bool = False,
) -> jax.Array:
    r"""Dice loss with inverse-squared-frequency class weights (optax's generalized Dice).

    .. math::
        w_c = C \frac{1 / (F_c^2 + \epsilon)}{\sum_k 1 / (F_k^2 + \epsilon)},
        \quad F_c = \sum_{b, i} t_{bic}, \quad \epsilon = 10^{-7},
        \qquad
        \ell = \operatorname{mean}_{b, c}\; w_c \left(1 - \frac{2 I_{bc} + 2 s}
          {P_{bc} + T_{bc} + 2 s}\right)

    The class frequencies ``F_c`` are counted over the whole batch, the per-image
    Dice losses (sums over the pixels, as in :func:`dice_loss`) are weighted and then
    averaged over the images and the classes. Rare classes weigh more. With
    ``ignore_background`` class 0 is dropped after the weights are normalized.

    A drop-in for ``optax.losses.multiclass_generalized_dice_loss`` (optax 0.2.8), with
    the same values and the differences listed in :func:`dice_loss`. Note that it is
    optax's formula: the weighted mean of the per-class Dice losses, not the ratio of
    weighted sums :math:`1 - 2 \sum_c w_c I_c / \sum_c w_c (P_c + T_c)` of Sudre et al.
    The weights depend on the targets, and so does their gradient.

    Args:
      predictions: logits ``[B, ..., C]`` (probabilities with ``apply_softmax=False``).
      targets: one-hot (or soft) targets of the same shape.
      smooth: ``s >= 0``, as in :func:`dice_loss`.
      apply_softmax: apply softmax (sigmoid for one channel) to the predictions.
      ignore_background: leave class 0 out of the mean.

    Returns:
      A scalar; float32 for 16-bit predictions.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxloss
      >>> # four pixels: class 0 is true at three (F = 3), class 1 at one (F = 1),
      >>> # so the weights 1/9 and 1, normalized to sum to 2, are 0.2 and 1.8
      >>> probs = jnp.array([[[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]]])
      >>> targets = jnp.array([[[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]])
      >>> # Dice losses 1 - 4/5 = 0.2 and 1 - 2/3: (0.2 * 0.2 + 1.8 / 3) / 2
      >>> print(jaxloss.multiclass_generalized_dice_loss(
      ...     probs, targets, smooth=0.0, apply_softmax=False))
      0.32

    References:
      Sudre, Li, Vercauteren, Ourselin and Cardoso, "Generalised Dice overlap as a deep
      learning loss function for highly unbalanced segmentations", DLMIA 2017.
    """
    fn = "multiclass_generalized_dice_loss"
    predictions, targets = _prepare(fn, predictions, targets, add_channel=False)
    shape = tuple(predictions.shape)
    axes = _summed_axes(None, shape, fn)
    per_class = tuple(d for i, d in enumerate(shape) if i not in axes)
    kernel = _Dice(
        fn=fn,
        axes=axes,
        activation=bool(apply_softmax),
        ignore_background=bool(ignore_background),
        reduction="none",
        checks=_checks.checks_enabled(),
    )
    return _generalized_dice(
        kernel, predictions, targets, _parameter(smooth, "smooth", fn, per_class)
    )
