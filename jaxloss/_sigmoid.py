"""Sigmoid (independent-label) cross-entropy on logits, and the log loss on probabilities.

Softmax cross-entropy treats the classes as mutually exclusive (one label per example);
sigmoid cross-entropy treats each element as its own yes/no question (binary
classification, multi-label tagging), so it returns one loss per element.

    loss = q z softplus(-x) + (1 - z) softplus(x)         (PyTorch, TensorFlow)

    d loss / dx = (1 - z) sigmoid(x) - q z sigmoid(-x)    (= sigmoid(x) - z for q = 1)
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from . import _checks, _numerics, _reduction

# --------------------------------------------------------------------------------------
# Elementwise kernels. ``mask`` is a boolean array of the logits' shape (or None).


def smoothed(labels, smoothing, dtype):
    """Labels moved toward 1/2: ``z (1 - eps) + eps / 2`` (Keras)."""
    z = labels.astype(dtype)
    return z if not smoothing else z * (1 - smoothing) + smoothing / 2


def weighted_softplus(a, b, x):
    """``a softplus(-x) + b softplus(x)``, the sigmoid losses' core, select-free.

    With ``softplus(+/-x) = relu(+/-x) + log1p(exp(-|x|))`` and
    ``relu(+/-x) = |x| (1 -/+ sign x) / 2``, it takes one exp and one log1p per element,
    in arithmetic that XLA:CPU fuses into the mean's reduction. ``|x|`` is capped at
    the largest float, so a term with weight 0 adds exactly 0 at an infinite logit
    (``0 * inf`` would be NaN); the price is that an infinite logit against its label
    costs the largest float (about 3.4e38 in float32) rather than ``inf``.
    """
    magnitude = jnp.minimum(jnp.abs(x), _numerics.largest(x.dtype))  # NaN: log1p(exp(NaN))
    sign = jnp.sign(x)
    relus = (magnitude / 2) * (a * (1 - sign) + b * (1 + sign))  # halved first: no overflow
    return relus + (a + b) * jnp.log1p(jnp.exp(-jnp.abs(x)))


def _times(coef, value):
    """``coef * value`` with ``0 * inf`` read as 0 (a term with no weight adds nothing)."""
    return jnp.where(coef == 0, 0, coef * jnp.where(coef == 0, 0, value))


def _sigmoid_value(k, logits, labels, pos_weight, mask):
    dtype = _numerics.compute_dtype(logits)
    x = _numerics.mask_rows(logits.astype(dtype), mask)
    raw = _numerics.mask_rows(labels.astype(dtype), mask)
    z = smoothed(raw, k.smoothing, dtype)
    a = z if pos_weight is None else _numerics.valid_weights(pos_weight.astype(dtype)) * z
    loss = weighted_softplus(a, 1 - z, x) + _numerics.nan_outside_unit(raw)
    return _numerics.mask_rows(loss, mask)


def _sigmoid_tangent(k, logits, labels, pos_weight, mask, _value, _stats, dx, dz, dq, _dm):
    dtype = _numerics.compute_dtype(logits)
    x = _numerics.mask_rows(logits.astype(dtype), mask)
    raw = _numerics.mask_rows(labels.astype(dtype), mask)
    z = smoothed(raw + _numerics.nan_outside_unit(raw), k.smoothing, dtype)
    q = None if pos_weight is None else _numerics.valid_weights(pos_weight.astype(dtype))
    out = 0
    if dx is not None:
        a = z if q is None else q * z
        g = (1 - z) * jax.nn.sigmoid(x) - a * jax.nn.sigmoid(-x)
        out = out + g * _numerics.mask_rows(dx.astype(dtype), mask)
    if dz is not None:  # d loss / dz~ = q softplus(-x) - softplus(x)
        sp_neg = jax.nn.softplus(-x)
        g = (sp_neg if q is None else q * sp_neg) - jax.nn.softplus(x)
        g = g * _numerics.nan_at(z)  # NaN for a label outside [0, 1], as its loss is
        out = out + (1 - k.smoothing) * g * _numerics.mask_rows(dz.astype(dtype), mask)
    if dq is not None:  # NaN at an invalid pos_weight and at a NaN logit (whatever z)
        g = jnp.where(jnp.isnan(x), jnp.nan, _times(z, jax.nn.softplus(-x)))
        out = out + g * _numerics.nan_at(q) * dq.astype(dtype)
    return _numerics.mask_rows(jnp.broadcast_to(out, x.shape), mask)


_sigmoid_xent = _numerics.custom_rule(_sigmoid_value, _sigmoid_tangent)


@dataclasses.dataclass(frozen=True)
class SigmoidCrossEntropy(_reduction.Kernel):
    smoothing: float = 0.0

    def check(self, arrays, mask):
        _, labels, pos_weight = arrays
        _checks.check_in_unit_interval(self.fn, "label", labels, mask)
        if pos_weight is not None:
            _checks.check_nonnegative_values(self.fn, "pos_weight", pos_weight)

    def values(self, arrays, mask):
        return _sigmoid_xent(self, *arrays, mask)


# Log loss on probabilities, PyTorch's binary_cross_entropy: logs clamped at -100, and
# the gradient (p - z) / max(p (1 - p), 1e-12), so both stay finite at p = 0 and 1.
_LOG_FLOOR = -100.0
_GRAD_EPS = 1e-12


def _clamped_logs(p):
    return _numerics.at_least(jnp.log(p), _LOG_FLOOR), _numerics.at_least(jnp.log1p(-p), _LOG_FLOOR)


def _bce_parts(k, probs, labels, mask):
    dtype = _numerics.compute_dtype(probs)
    p = _numerics.mask_rows(probs.astype(dtype), mask, 0.5)
    p = p + _numerics.nan_outside_unit(p)
    raw = _numerics.mask_rows(labels.astype(dtype), mask)
    z = smoothed(raw + _numerics.nan_outside_unit(raw), k.smoothing, dtype)
    return p, z


def _bce_value(k, probs, labels, mask):
    p, z = _bce_parts(k, probs, labels, mask)
    log_p, log_1mp = _clamped_logs(p)
    return _numerics.mask_rows(-(z * log_p + (1 - z) * log_1mp), mask)


def _bce_tangent(k, probs, labels, mask, _value, _stats, dp, dz, _dm):
    p, z = _bce_parts(k, probs, labels, mask)
    out = 0
    if dp is not None:
        g = (p - z) / _numerics.at_least(p * (1 - p), _GRAD_EPS)
        out = out + g * _numerics.mask_rows(dp.astype(p.dtype), mask)
    if dz is not None:
        log_p, log_1mp = _clamped_logs(p)
        dz = _numerics.mask_rows(dz.astype(p.dtype), mask)
        g = (log_p - log_1mp) * _numerics.nan_at(z)  # NaN for a label outside [0, 1]
        out = out - (1 - k.smoothing) * g * dz
    return _numerics.mask_rows(jnp.broadcast_to(out, p.shape), mask)


_bce = _numerics.custom_rule(_bce_value, _bce_tangent)


@dataclasses.dataclass(frozen=True)
class BinaryCrossEntropy(_reduction.Kernel):
    smoothing: float = 0.0

    def check(self, arrays, mask):
        probs, labels = arrays
        _checks.check_in_unit_interval(self.fn, "probability", probs, mask)
        _checks.check_in_unit_interval(self.fn, "label", labels, mask)

    def values(self, arrays, mask):
        return _bce(self, *arrays, mask)


# --------------------------------------------------------------------------------------
# Public functions.


def prepare(fn, x, labels, where, sample_weight, x_name="logits", broadcast_labels=False):
    """Checks an elementwise loss's arrays; returns ``(x, labels, where, weights)``
    with the mask and the weights broadcast to ``x``'s shape."""
    x = _checks.as_array(x, x_name, fn)
    _checks.check_floating(x, x_name, fn)
    shape = tuple(x.shape)
    if broadcast_labels:
        labels = _checks.check_broadcastable(labels, shape, "labels", fn, x_name)
        labels = jnp.broadcast_to(labels, shape)
    else:
        labels = _checks.as_array(labels, "labels", fn)
        if labels.shape != x.shape:
            raise ValueError(
                f"{fn}: labels has shape {tuple(labels.shape)} but {x_name} have shape "
                f"{shape}; sigmoid losses need one label per element"
            )
    _checks.check_real(labels, "labels", fn)
    where = _checks.check_where(where, shape, fn, f"{x_name}' (per-element)")
    weights = _checks.check_sample_weight(sample_weight, shape, fn, f"{x_name}' (per-element)")
    return x, labels, where, weights


def _positive_weight(fn, pos_weight, logits):
    if pos_weight is None:
        return None
    _checks.check_weights(pos_weight, "pos_weight", fn)
    pos_weight = _checks.check_broadcastable(pos_weight, tuple(logits.shape), "pos_weight", fn)
    if not jnp.issubdtype(pos_weight.dtype, jnp.floating):
        pos_weight = pos_weight.astype(_numerics.compute_dtype(logits))
    return pos_weight


def _sigmoid(
    fn,
    logits,
    labels,
    *,
    pos_weight,
    where,
    sample_weight,
    label_smoothing,
    reduction,
    broadcast_labels=False,
):
    logits, labels, where, weights = prepare(
        fn, logits, labels, where, sample_weight, broadcast_labels=broadcast_labels
    )
    kernel = SigmoidCrossEntropy(
        fn=fn, smoothing=_checks.check_fraction(label_smoothing, "label_smoothing", fn)
    )
    return _reduction.apply(
        kernel,
        (logits, labels, _positive_weight(fn, pos_weight, logits)),
        where,
        weights,
        reduction=_checks.check_reduction(reduction, fn),
        checks=_checks.checks_enabled(),
    )


def sigmoid_cross_entropy(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    pos_weight: ArrayLike | None = None,
    where: ArrayLike | None = None,
    sample_weight: ArrayLike | None = None,
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
    [0, 1] are allowed; a label outside [0, 1] gives a NaN loss. Label smoothing moves
    labels toward 1/2 (Keras).

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
      pos_weight: weight of the positive term, ``>= 0``, broadcastable to the logits
        (a ``[C]`` vector weighs each of the last axis' labels).
      where: boolean mask broadcastable to the logits (one per element; for one per
        row of ``[N, C]`` logits pass ``where[:, None]``). Masked elements give exactly
        0 loss and gradient, even with NaN/inf logits.
      sample_weight: float weights ``>= 0`` broadcastable to the logits, multiplying
        each element's loss and its weight in ``"mean"`` (PyTorch's ``weight``).
      label_smoothing: ``eps`` in [0, 1].
      reduction: ``"none"``, ``"sum"``, or ``"mean"`` over unmasked elements (PyTorch's
        mean; ``pos_weight`` does not enter the denominator, ``sample_weight`` does).

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
    return _sigmoid(
        "sigmoid_cross_entropy",
        logits,
        labels,
        pos_weight=pos_weight,
        where=where,
        sample_weight=sample_weight,
        label_smoothing=label_smoothing,
        reduction=reduction,
    )


def sigmoid_binary_cross_entropy(logits: ArrayLike, labels: ArrayLike) -> jax.Array:
    r"""Drop-in for ``optax.sigmoid_binary_cross_entropy``: :func:`sigmoid_cross_entropy`.

    .. math:: \ell = -z \log \sigma(x) - (1 - z) \log (1 - \sigma(x))

    The same values as optax for the same arguments, ``labels`` broadcast against
    ``logits`` as optax allows (labels ``[C]`` for logits ``[N, C]``), with finite
    values and zero gradients at infinite logits that agree with their labels (optax
    gives NaN).

    Args:
      logits: logits, any shape.
      labels: labels broadcastable to the logits' shape.

    Returns:
      Per-element losses, the logits' shape.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxloss
      >>> print(jaxloss.sigmoid_binary_cross_entropy(jnp.array([0.0, 2.0]), jnp.array([1.0, 1.0])))
      [0.6931 0.1269]
    """
    return _sigmoid(
        "sigmoid_binary_cross_entropy",
        logits,
        labels,
        pos_weight=None,
        where=None,
        sample_weight=None,
        label_smoothing=0.0,
        reduction="none",
        broadcast_labels=True,
    )


def binary_cross_entropy(
    probs: ArrayLike,
    labels: ArrayLike,
    *,
    where: ArrayLike | None = None,
    sample_weight: ArrayLike | None = None,
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

    A probability or a label outside [0, 1] gives NaN (wrap the call in
    :func:`jaxloss.checked` to raise an error naming it).

    Args:
      probs: probabilities in [0, 1], any shape.
      labels: the same shape; 0/1, booleans or probabilities.
      where: boolean mask broadcastable to ``probs``; masked elements give 0.
      sample_weight: float weights ``>= 0`` broadcastable to ``probs`` (PyTorch's
        ``weight``).
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
    probs, labels, where, weights = prepare(fn, probs, labels, where, sample_weight, "probs")
    kernel = BinaryCrossEntropy(
        fn=fn, smoothing=_checks.check_fraction(label_smoothing, "label_smoothing", fn)
    )
    return _reduction.apply(
        kernel,
        (probs, labels),
        where,
        weights,
        reduction=_checks.check_reduction(reduction, fn),
        checks=_checks.checks_enabled(),
    )
