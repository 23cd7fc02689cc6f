"""Sigmoid (independent-label) cross-entropy on logits, and the log loss on probabilities.

Softmax cross-entropy treats the classes as mutually exclusive (one label per example);
sigmoid cross-entropy treats each element as its own yes/no question (binary
classification, multi-label tagging), so it returns one loss per element.

    loss = q z log(1 + e^-x) + (1 - z) log(1 + e^x)
         = (1 - z) x + (1 + (q - 1) z) softplus(-x)        (PyTorch, TensorFlow)

    d loss / dx = (1 - z) sigmoid(x) - q z sigmoid(-x)     (= sigmoid(x) - z for q = 1)
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from . import _checks, _numerics, _reduction

# --------------------------------------------------------------------------------------
# Elementwise kernels. ``mask`` is a boolean array of the logits' shape (or None).


def _smoothed(labels, smoothing, dtype):
    """Labels moved toward 1/2: ``z (1 - eps) + eps / 2`` (Keras)."""
    z = labels.astype(dtype)
    return z if not smoothing else z * (1 - smoothing) + smoothing / 2


def _weighted_softplus(a, b, x):
    """``a softplus(-x) + b softplus(x)``, the sigmoid losses' core, select-free.

    With ``softplus(+/-x) = relu(+/-x) + log1p(exp(-|x|))`` and
    ``relu(+/-x) = |x| (1 +/- sign x) / 2``, it takes one exp and one log1p per element,
    and only arithmetic that XLA:CPU fuses into the mean's reduction (a select or a
    clamp would be written out first). ``|x|`` is capped at the largest float, so a
    term with weight 0 adds exactly 0 at an infinite logit (``0 * inf`` would be NaN);
    the price is that an infinite logit against its label costs the largest float
    (about 3.4e38 in float32) rather than ``inf``.
    """
    magnitude = jnp.minimum(jnp.abs(x), jnp.finfo(x.dtype).max)
    sign = jnp.sign(x)
    relus = (magnitude / 2) * (a * (1 - sign) + b * (1 + sign))  # halved first: no overflow
    return relus + (a + b) * jnp.log1p(jnp.exp(-jnp.abs(x)))


def _times(coef, value):
    """``coef * value`` with ``0 * inf`` read as 0 (a term with no weight adds nothing)."""
    return jnp.where(coef == 0, 0, coef * value)


def _sigmoid_xent_forward(smoothing, logits, labels, pos_weight, mask):
    dtype = _numerics.compute_dtype(logits)
    x = _numerics.mask_rows(logits.astype(dtype), mask)
    z = _numerics.mask_rows(_smoothed(labels, smoothing, dtype), mask)
    a = z if pos_weight is None else pos_weight.astype(dtype) * z
    loss = _weighted_softplus(a, 1 - z, x)
    return _numerics.mask_rows(loss, mask), ()


def _sigmoid_xent_tangent(smoothing, logits, labels, pos_weight, mask, dx, dz, dq, _dm):
    dtype = _numerics.compute_dtype(logits)
    x = _numerics.mask_rows(logits.astype(dtype), mask)
    z = _numerics.mask_rows(_smoothed(labels, smoothing, dtype), mask)
    q = None if pos_weight is None else pos_weight.astype(dtype)
    out = 0
    if dx is not None:
        a = z if q is None else q * z
        g = (1 - z) * jax.nn.sigmoid(x) - a * jax.nn.sigmoid(-x)
        out = out + g * _numerics.mask_rows(dx.astype(dtype), mask)
    if dz is not None:  # d loss / dz~ = q softplus(-x) - softplus(x)
        sp_neg = jax.nn.softplus(-x)
        g = (sp_neg if q is None else q * sp_neg) - jax.nn.softplus(x)
        out = out + (1 - smoothing) * g * _numerics.mask_rows(dz.astype(dtype), mask)
    if dq is not None:
        out = out + _times(z, jax.nn.softplus(-x)) * dq.astype(dtype)
    return _numerics.mask_rows(jnp.broadcast_to(out, x.shape), mask)


_sigmoid_xent = _numerics.custom_rule(_sigmoid_xent_forward, _sigmoid_xent_tangent, num_static=1)

# Log loss on probabilities, PyTorch's binary_cross_entropy: logs clamped at -100, and
# the gradient (p - z) / max(p (1 - p), 1e-12), so both stay finite at p = 0 and 1.
_LOG_FLOOR = -100.0
_GRAD_EPS = 1e-12


def _clamped_logs(p):
    return jnp.maximum(jnp.log(p), _LOG_FLOOR), jnp.maximum(jnp.log1p(-p), _LOG_FLOOR)


def _bce_forward(smoothing, probs, labels, mask):
    dtype = _numerics.compute_dtype(probs)
    p = _numerics.mask_rows(probs.astype(dtype), mask, 0.5)
    z = _numerics.mask_rows(_smoothed(labels, smoothing, dtype), mask)
    log_p, log_1mp = _clamped_logs(p)
    loss = -(z * log_p + (1 - z) * log_1mp)
    return _numerics.mask_rows(loss, mask), ()


def _bce_tangent(smoothing, probs, labels, mask, dp, dz, _dm):
    dtype = _numerics.compute_dtype(probs)
    p = _numerics.mask_rows(probs.astype(dtype), mask, 0.5)
    z = _numerics.mask_rows(_smoothed(labels, smoothing, dtype), mask)
    out = 0
    if dp is not None:
        g = (p - z) / jnp.maximum(p * (1 - p), _GRAD_EPS)
        out = out + g * _numerics.mask_rows(dp.astype(dtype), mask)
    if dz is not None:
        log_p, log_1mp = _clamped_logs(p)
        out = out - (1 - smoothing) * (log_p - log_1mp) * _numerics.mask_rows(
            dz.astype(dtype), mask
        )
    return _numerics.mask_rows(jnp.broadcast_to(out, p.shape), mask)


_bce = _numerics.custom_rule(_bce_forward, _bce_tangent, num_static=1)


# --------------------------------------------------------------------------------------
# Public functions.


@functools.partial(jax.jit, static_argnames=("kind", "smoothing", "reduction", "checks", "fn"))
def _elementwise(x, labels, pos_weight, where, *, kind, smoothing, reduction, checks, fn):
    if kind == "bce":
        if checks:
            bad = (x < 0) | (x > 1) | jnp.isnan(x)
            if where is not None:
                bad = bad & where
            first = jnp.argmax(bad.ravel())
            _checks.check(
                ~jnp.any(bad),
                f"{fn}: probs must be in [0, 1]; got {{value}} at flat index {{index}}",
                value=x.ravel()[first],
                index=first,
            )
        losses = _bce(smoothing, x, labels, where)
    else:
        losses = _sigmoid_xent(smoothing, x, labels, pos_weight, where)
    weights = _reduction.count_weights(where, losses.dtype)
    return _reduction.reduce(losses, weights, reduction)


def broadcastable_to(fn, name, value, shape, what="the logits"):
    """``value`` as an array that broadcasts to ``shape``, or a ValueError."""
    value = _checks.as_array(value, name, fn)
    try:
        ok = np.broadcast_shapes(value.shape, shape) == tuple(shape)
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(
            f"{fn}: {name} has shape {tuple(value.shape)}, which does not broadcast to "
            f"{what}' shape {tuple(shape)}"
        )
    return value


def _prepare(fn, x, labels, where, smoothing, reduction, x_name):
    x = _checks.as_array(x, x_name, fn)
    _checks.check_floating(x, x_name, fn)
    labels = _checks.as_array(labels, "labels", fn)
    if labels.shape != x.shape:
        raise ValueError(
            f"{fn}: labels has shape {tuple(labels.shape)} but {x_name} have shape "
            f"{tuple(x.shape)}; sigmoid losses need one label per element"
        )
    if not (jnp.issubdtype(labels.dtype, jnp.number) or labels.dtype == jnp.bool_):
        raise TypeError(f"{fn}: labels must be numbers or booleans, got {labels.dtype}")
    if where is not None:
        where = broadcastable_to(fn, "where", where, x.shape, f"{x_name}")
        if where.dtype != jnp.bool_:
            raise TypeError(f"{fn}: where must be a boolean mask, got dtype {where.dtype}")
        where = jnp.broadcast_to(where, x.shape)
    return (
        x,
        labels,
        where,
        _checks.check_fraction(smoothing, "label_smoothing", fn),
        _checks.check_reduction(reduction, fn),
    )


def sigmoid_cross_entropy(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    pos_weight: ArrayLike | None = None,
    where: ArrayLike | None = None,
    label_smoothing: float = 0.0,
    reduction: str = "none",
) -> jax.Array:
    r"""Sigmoid cross-entropy on logits: binary and multi-label classification.

    .. math::
        \ell = q\,\tilde z \log(1 + e^{-x}) + (1 - \tilde z) \log(1 + e^{x}),
        \qquad \tilde z = z (1 - \varepsilon) + \varepsilon / 2

    one loss per element (each element is an independent yes/no question; for
    mutually exclusive classes use the softmax losses). ``q`` is ``pos_weight``, the
    weight of the positive term: PyTorch's ``BCEWithLogitsLoss(pos_weight=q)`` and
    TensorFlow's ``weighted_cross_entropy_with_logits(pos_weight=q)`` use this formula;
    ``q = num_negatives / num_positives`` per class balances rare labels. Soft labels in
    [0, 1] are allowed. Label smoothing moves labels toward 1/2 (Keras).

    Numerics: computed as softplus terms, so logits of ``+/-1e4`` stay finite, and
    ``x = +inf`` with label 1 (or ``-inf`` with label 0) gives loss 0 and gradient 0
    (optax gives NaN); a term whose weight is 0 contributes exactly 0. An infinite
    logit against its label costs the largest float (about ``3.4e38``) rather than
    ``inf``, with a finite gradient. The gradient is
    ``(1 - z) sigmoid(x) - q z sigmoid(-x)`` (``sigmoid(x) - z`` without ``pos_weight``),
    the ``p - y`` that does not vanish when the prediction is confidently wrong.

    Args:
      logits: ``[...]`` logits, any shape; bfloat16/float16 computed in float32.
      labels: the logits' shape; 0/1, booleans, or probabilities.
      pos_weight: weight of the positive term, broadcastable to the logits (a ``[C]``
        vector weighs each of the last axis' labels).
      where: boolean mask broadcastable to the logits (one per element; for one per
        row of ``[N, C]`` logits pass ``where[:, None]``). Masked elements give exactly
        0 loss and gradient, even with NaN/inf logits.
      label_smoothing: ``eps`` in [0, 1].
      reduction: ``"none"``, ``"sum"``, or ``"mean"`` over unmasked elements (PyTorch's
        mean; ``pos_weight`` does not enter the denominator).

    Returns:
      Per-element losses of the logits' shape (float32 for 16-bit logits), or a scalar.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxloss
      >>> logits = jnp.array([0.0, jnp.log(3.0), jnp.inf, -jnp.inf])  # p = .5, .75, 1, 0
      >>> labels = jnp.array([1.0, 0.0, 1.0, 0.0])
      >>> print(jaxloss.sigmoid_cross_entropy(logits, labels))  # log 2, -log .25, 0, 0
      [0.6931 1.3863 0.     0.    ]
      >>> print(jaxloss.sigmoid_cross_entropy(logits[:2], labels[:2], pos_weight=3.0))
      [2.0794 1.3863]

    References:
      PyTorch ``torch.nn.BCEWithLogitsLoss``; TensorFlow
      ``tf.nn.weighted_cross_entropy_with_logits``.
    """
    fn = "sigmoid_cross_entropy"
    logits, labels, where, smoothing, reduction = _prepare(
        fn, logits, labels, where, label_smoothing, reduction, "logits"
    )
    if pos_weight is not None:
        pos_weight = broadcastable_to(fn, "pos_weight", pos_weight, logits.shape)
        if not jnp.issubdtype(pos_weight.dtype, jnp.floating):
            pos_weight = pos_weight.astype(_numerics.compute_dtype(logits))
    return _elementwise(
        logits,
        labels,
        pos_weight,
        where,
        kind="sigmoid",
        smoothing=smoothing,
        reduction=reduction,
        checks=False,
        fn=fn,
    )


def sigmoid_binary_cross_entropy(logits: ArrayLike, labels: ArrayLike) -> jax.Array:
    r"""Drop-in for ``optax.sigmoid_binary_cross_entropy``: :func:`sigmoid_cross_entropy`.

    .. math:: \ell = -z \log \sigma(x) - (1 - z) \log (1 - \sigma(x))

    The same values as optax for the same arguments, with finite values and zero
    gradients at infinite logits that agree with their labels (optax gives NaN).

    Args:
      logits: logits, any shape.
      labels: labels of the logits' shape.

    Returns:
      Per-element losses.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxloss
      >>> print(jaxloss.sigmoid_binary_cross_entropy(jnp.array([0.0, 2.0]), jnp.array([1.0, 1.0])))
      [0.6931 0.1269]
    """
    return sigmoid_cross_entropy(logits, labels)


def binary_cross_entropy(
    probs: ArrayLike,
    labels: ArrayLike,
    *,
    where: ArrayLike | None = None,
    label_smoothing: float = 0.0,
    reduction: str = "none",
) -> jax.Array:
    r"""Binary cross-entropy (log loss) on probabilities.

    .. math:: \ell = -\big(\tilde z \log p + (1 - \tilde z) \log(1 - p)\big)

    Prefer :func:`sigmoid_cross_entropy` on logits: it is exact where this one must
    clamp, and cheaper. This form is for models that output probabilities. As in
    PyTorch's ``binary_cross_entropy``, the logs are clamped at -100, so a confidently
    wrong ``p = 0`` or ``1`` costs 100 rather than ``inf``, and the gradient is
    ``(p - z) / max(p (1 - p), 1e-12)``: finite everywhere, and exactly the
    derivative wherever the clamps are inactive.

    A probability outside [0, 1] gives NaN (wrap the call in :func:`jaxloss.checked`
    to raise an error naming it).

    Args:
      probs: probabilities in [0, 1], any shape.
      labels: the same shape; 0/1, booleans or probabilities.
      where: boolean mask broadcastable to ``probs``; masked elements give 0.
      label_smoothing: ``eps`` in [0, 1], labels moved toward 1/2.
      reduction: ``"none"``, ``"sum"`` or ``"mean"`` over unmasked elements.

    Returns:
      Per-element losses, or a scalar.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxloss
      >>> probs = jnp.array([0.75, 0.75, 0.0, 1.0])
      >>> labels = jnp.array([1.0, 0.0, 1.0, 1.0])
      >>> print(jaxloss.binary_cross_entropy(probs, labels))  # -log .75, -log .25, 100, 0
      [  0.2877   1.3863 100.       0.    ]
    """
    fn = "binary_cross_entropy"
    probs, labels, where, smoothing, reduction = _prepare(
        fn, probs, labels, where, label_smoothing, reduction, "probs"
    )
    return _elementwise(
        probs,
        labels,
        None,
        where,
        kind="bce",
        smoothing=smoothing,
        reduction=reduction,
        checks=_checks.checks_enabled(),
        fn=fn,
    )
