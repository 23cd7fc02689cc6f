"""Plain, obviously-correct formulas that jaxloss is compared against.

``np_*`` are NumPy float64 formulas written straight from SEMANTICS.md (the values);
``jnp_*`` are the same formulas in jax.numpy, for autodiff (the derivatives). Neither
shares code with the package.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np


def np_log_softmax(x, axis=-1):
    x = np.asarray(x, np.float64)
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    with np.errstate(divide="ignore"):
        return x - m - np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))


def np_logsumexp(x, axis=-1):
    x = np.asarray(x, np.float64)
    m = np.max(x, axis=axis, keepdims=True)
    return np.squeeze(m + np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)), axis)


def _reduce(losses, weights, reduction):
    if reduction == "none":
        return losses
    if reduction == "sum":
        return losses.sum()
    total_weight = weights.sum()
    return 0.0 if total_weight == 0 else losses.sum() / total_weight


def np_categorical(
    logits,
    targets,
    *,
    axis=-1,
    where=None,
    class_weights=None,
    label_smoothing=0.0,
    z_loss=0.0,
    reduction="none",
):
    """-sum_c w_c t~_c log p_c + z lse^2 per example, then the weighted reduction."""
    x = np.moveaxis(np.asarray(logits, np.float64), axis, -1)
    t = np.moveaxis(np.asarray(targets, np.float64), axis, -1)
    num_classes = x.shape[-1]
    w = np.ones(num_classes) if class_weights is None else np.asarray(class_weights)
    w = w.astype(np.float64)
    mask = np.ones(x.shape[:-1], bool)
    if where is not None:
        mask = np.broadcast_to(np.asarray(where), mask.shape)
    x = np.where(mask[..., None], x, 0.0)
    t = np.where(mask[..., None], t, 0.0)
    t_smooth = (1 - label_smoothing) * t + label_smoothing / num_classes
    logp = np_log_softmax(x)
    with np.errstate(invalid="ignore"):
        terms = np.where(t_smooth == 0, 0.0, w * t_smooth * logp)
    losses = -terms.sum(-1) + z_loss * np_logsumexp(x) ** 2
    losses = np.where(mask, losses, 0.0)
    weights = np.where(mask, (t * w).sum(-1) if class_weights is not None else 1.0, 0)
    return _reduce(losses, weights, reduction)


def np_sparse(
    logits,
    labels,
    *,
    axis=-1,
    where=None,
    ignore_index=None,
    class_weights=None,
    label_smoothing=0.0,
    z_loss=0.0,
    reduction="none",
):
    """PyTorch's formula: (1-eps) w_y (-log p_y) + eps/K sum_c w_c (-log p_c)."""
    x = np.moveaxis(np.asarray(logits, np.float64), axis, -1)
    y = np.asarray(labels)
    num_classes = x.shape[-1]
    w = np.ones(num_classes) if class_weights is None else np.asarray(class_weights)
    w = w.astype(np.float64)
    mask = np.ones(y.shape, bool)
    if where is not None:
        mask = mask & np.broadcast_to(np.asarray(where), y.shape)
    if ignore_index is not None:
        mask = mask & (y != ignore_index)
    in_range = (y >= 0) & (y < num_classes)
    y_safe = np.where(in_range & mask, y, 0)
    x = np.where(mask[..., None], x, 0.0)
    logp = np_log_softmax(x)
    nll = -np.take_along_axis(logp, y_safe[..., None], -1)[..., 0]
    w_y = w[y_safe]
    smooth = -(w * logp).sum(-1) / num_classes
    losses = (1 - label_smoothing) * w_y * nll
    if label_smoothing:
        losses = losses + label_smoothing * smooth
    losses = losses + z_loss * np_logsumexp(x) ** 2
    losses = np.where(in_range, losses, np.nan)
    losses = np.where(mask, losses, 0.0)
    return _reduce(losses, np.where(mask, w_y, 0.0), reduction)


def jnp_categorical(
    logits, targets, class_weights=None, *, label_smoothing=0.0, z_loss=0.0, axis=-1
):
    """Per-example loss, plain jax.numpy, for autodiff (no -inf handling)."""
    num_classes = logits.shape[axis]
    t = (1 - label_smoothing) * targets + label_smoothing / num_classes
    if class_weights is not None:
        shape = [1] * logits.ndim
        shape[axis] = num_classes
        t = t * class_weights.reshape(shape)
    logp = logits - jnp.log(jnp.sum(jnp.exp(logits), axis, keepdims=True))
    lse = jnp.log(jnp.sum(jnp.exp(logits), axis))
    return -jnp.sum(t * logp, axis) + z_loss * lse**2


def _np_log_sigmoid(x):
    x = np.asarray(x, np.float64)
    return -np.logaddexp(0.0, -x)


def _mean_over(losses, mask, reduction):
    losses = np.where(mask, losses, 0.0)
    return _reduce(losses, mask.astype(np.float64), reduction)


def np_sigmoid(
    logits, labels, *, pos_weight=None, where=None, label_smoothing=0.0, reduction="none"
):
    """q z (-log s(x)) + (1 - z)(-log s(-x)), labels smoothed toward 1/2."""
    x = np.asarray(logits, np.float64)
    z = np.asarray(labels, np.float64) * (1 - label_smoothing) + label_smoothing / 2
    q = 1.0 if pos_weight is None else np.asarray(pos_weight, np.float64)
    losses = -(q * z * _np_log_sigmoid(x) + (1 - z) * _np_log_sigmoid(-x))
    mask = np.ones(x.shape, bool) if where is None else np.broadcast_to(where, x.shape)
    return _mean_over(losses, mask, reduction)


def np_bce(probs, labels, *, where=None, label_smoothing=0.0, reduction="none"):
    p = np.asarray(probs, np.float64)
    z = np.asarray(labels, np.float64) * (1 - label_smoothing) + label_smoothing / 2
    with np.errstate(divide="ignore"):
        losses = -(z * np.maximum(np.log(p), -100) + (1 - z) * np.maximum(np.log1p(-p), -100))
    mask = np.ones(p.shape, bool) if where is None else np.broadcast_to(where, p.shape)
    return _mean_over(losses, mask, reduction)


def np_sigmoid_focal(logits, labels, *, alpha=None, gamma=2.0, reduction="none"):
    """torchvision.ops.sigmoid_focal_loss, in float64."""
    x = np.asarray(logits, np.float64)
    z = np.asarray(labels, np.float64)
    p = 1 / (1 + np.exp(-x))
    ce = -(z * _np_log_sigmoid(x) + (1 - z) * _np_log_sigmoid(-x))
    p_t = p * z + (1 - p) * (1 - z)
    loss = ce * (1 - p_t) ** gamma
    if alpha is not None:
        loss = (alpha * z + (1 - alpha) * (1 - z)) * loss
    return _mean_over(loss, np.ones(x.shape, bool), reduction)


def np_softmax_focal(logits, labels, *, alpha=None, gamma=2.0):
    """-alpha_y (1 - p_y)^gamma log p_y per example (last axis)."""
    logp = np_log_softmax(logits)
    lp = np.take_along_axis(logp, np.asarray(labels)[..., None], -1)[..., 0]
    a = 1.0 if alpha is None else np.asarray(alpha, np.float64)
    if np.ndim(a):
        a = a[np.asarray(labels)]
    return -a * (1 - np.exp(lp)) ** gamma * lp


def _xlogy(x, y):
    x = np.asarray(x, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x == 0, 0.0, x * np.log(np.where(x == 0, 1.0, y)))


def np_kl(p, q, axis=-1):
    """KL(p || q) with 0 log 0 = 0."""
    return np.sum(_xlogy(p, p) - _xlogy(p, q), axis)


def np_entropy(p, axis=-1):
    return -np.sum(_xlogy(p, p), axis)


def np_js(p, q, axis=-1):
    m = (np.asarray(p, np.float64) + np.asarray(q, np.float64)) / 2
    return (np_kl(p, m, axis) + np_kl(q, m, axis)) / 2


def np_softmax(x, axis=-1):
    return (
        np.exp(np_log_softmax(np.moveaxis(np.asarray(x), axis, -1))).swapaxes(-1, axis)
        if axis not in (-1, np.ndim(x) - 1)
        else np.exp(np_log_softmax(x))
    )
