"""Information theory on probabilities, in nats or bits.

The quantities behind cross-entropy, for distributions given as probabilities (the
losses in :mod:`jaxloss` take logits). ``base`` picks the unit: ``e`` (default) for
nats, 2 for bits, 10 for hartleys. ``0 log 0 = 0`` throughout, and every function has a
hand-derived derivative rule that stays finite at zero probabilities (``log 0`` is
read as the log of the smallest normal float in derivatives).

    information(p)      = -log p                      (self-information, elementwise)
    entropy(p)          = -sum p log p                 H(p)
    cross_entropy(p, q) = -sum p log q                 H(p, q) = H(p) + KL(p || q)
    kl_divergence(p, q) =  sum p log(p / q)            KL(p || q) >= 0, 0 iff p = q
    js_divergence(p, q) =  KL(p || m)/2 + KL(q || m)/2, m = (p + q)/2, in [0, log 2]

Examples:
  The source articles' match, won 63 times in 64: a win carries little information,
  a loss six bits, and the outcome's entropy is about 0.116 bits.

  >>> import jax.numpy as jnp
  >>> from jaxloss import info
  >>> p = jnp.array([63 / 64, 1 / 64])
  >>> print(info.information(p, base=2))
  [0.0227 6.    ]
  >>> print(info.entropy(p, base=2))
  0.1161
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from . import _checks, _numerics

__all__ = ["information", "entropy", "cross_entropy", "kl_divergence", "js_divergence"]


def _xlogy(x, y):
    """``x log y`` with ``0 log 0 = 0`` (and ``0 log y = 0`` for any y >= 0; NaN for a
    NaN ``y``, an invalid probability, even where ``x = 0``)."""
    return jnp.where(x == 0, 0 * y, x * jnp.log(jnp.where(x == 0, 1, y)))


def _dlog(y):
    """``log y`` for derivatives: finite at ``y = 0``."""
    return _numerics.safe_log(y)


def _valid(p):
    """``p``, NaN where it is outside [0, 1]: an invalid probability is never a number."""
    return p + _numerics.nan_outside_unit(p)


def _row_poison(c, *arrays):
    """Per distribution (axis kept): 0, or NaN where any of ``arrays`` (made
    :func:`_valid`) holds an invalid probability. Added to a derivative's coefficients,
    it makes the whole row of the gradient NaN, not only the invalid entry."""
    return 0 * sum(jnp.sum(a, c.axis, keepdims=True) for a in arrays)


class _Config(NamedTuple):
    axis: int | None  # the distribution axis (None for elementwise information)
    scale: float  # 1 / log(base)


# Each rule: static config, arrays p (and q).


def _information_value(c, p):
    return (0 - jnp.log(_valid(p))) * c.scale  # 0 - x: no -0.0 at p = 1


def _information_tangent(c, p, _value, _stats, dp):
    return -dp / _valid(p) * c.scale  # d(-log p) = -dp / p


def _entropy_value(c, p):
    p = _valid(p)
    return (0 - jnp.sum(_xlogy(p, p), c.axis)) * c.scale


def _entropy_tangent(c, p, _value, _stats, dp):
    # d(-p log p) = -(log p + 1) dp
    p = _valid(p)
    return -jnp.sum((_dlog(p) + 1 + _row_poison(c, p)) * dp, c.axis) * c.scale


def _cross_entropy_value(c, p, q):
    return (0 - jnp.sum(_xlogy(_valid(p), _valid(q)), c.axis)) * c.scale


def _ratio(p, q):
    """``p / q``, 0 where ``p = 0`` (NaN for a NaN ``q``)."""
    return jnp.where(p == 0, 0 * q, p / jnp.where(p == 0, 1, q))


def _cross_entropy_tangent(c, p, q, _value, _stats, dp, dq):
    p, q = _valid(p), _valid(q)
    poison = _row_poison(c, p, q)
    out = 0
    if dp is not None:  # -log q dp
        out = out - jnp.sum((_dlog(q) + poison) * dp, c.axis)
    if dq is not None:  # -p / q dq, 0 where p = 0
        out = out - jnp.sum((_ratio(p, q) + poison) * dq, c.axis)
    return out * c.scale


def _kl_value(c, p, q):
    p, q = _valid(p), _valid(q)
    return jnp.sum(_xlogy(p, p) - _xlogy(p, q), c.axis) * c.scale


def _kl_tangent(c, p, q, _value, _stats, dp, dq):
    p, q = _valid(p), _valid(q)
    poison = _row_poison(c, p, q)
    out = 0
    if dp is not None:  # (log p + 1 - log q) dp
        out = out + jnp.sum((_dlog(p) + 1 - _dlog(q) + poison) * dp, c.axis)
    if dq is not None:  # -p / q dq
        out = out - jnp.sum((_ratio(p, q) + poison) * dq, c.axis)
    return out * c.scale


def _js_value(c, p, q):
    p, q = _valid(p), _valid(q)
    m = (p + q) / 2
    kl_pm = _xlogy(p, p) - _xlogy(p, m)
    kl_qm = _xlogy(q, q) - _xlogy(q, m)
    return jnp.sum(kl_pm + kl_qm, c.axis) / 2 * c.scale


def _js_tangent(c, p, q, _value, _stats, dp, dq):
    p, q = _valid(p), _valid(q)
    log_m = _dlog((p + q) / 2) + _row_poison(c, p, q)
    out = 0
    if dp is not None:  # log(p / m) / 2 dp
        out = out + jnp.sum((_dlog(p) - log_m) * dp, c.axis) / 2
    if dq is not None:
        out = out + jnp.sum((_dlog(q) - log_m) * dq, c.axis) / 2
    return out * c.scale


_information = _numerics.custom_rule(_information_value, _information_tangent)
_entropy = _numerics.custom_rule(_entropy_value, _entropy_tangent)
_cross_entropy = _numerics.custom_rule(_cross_entropy_value, _cross_entropy_tangent)
_kl = _numerics.custom_rule(_kl_value, _kl_tangent)
_js = _numerics.custom_rule(_js_value, _js_tangent)


def _scale(base, fn) -> float:
    base = _checks.static_float(base, "base", fn)
    if not base > 0 or base == 1:
        raise ValueError(f"{fn}: base must be > 0 and != 1 (e for nats, 2 for bits), got {base}")
    return 1.0 / math.log(base)


def _probs(fn, name, p):
    p = _checks.as_array(p, name, fn)
    _checks.check_floating(p, name, fn)
    return p.astype(_numerics.compute_dtype(p))


def _axis(fn, axis, ndim):
    if not isinstance(axis, int):
        raise TypeError(f"{fn}: axis must be an int, got {axis!r}")
    if ndim == 0 or not -ndim <= axis < ndim:
        raise ValueError(f"{fn}: axis={axis} is out of range for p with {ndim} dimensions")
    return axis % ndim


def _pair(fn, p, q, axis):
    p, q = _probs(fn, "p", p), _probs(fn, "q", q)
    if p.shape != q.shape:
        raise ValueError(f"{fn}: p has shape {tuple(p.shape)} but q has {tuple(q.shape)}")
    if p.dtype != q.dtype:
        q = q.astype(p.dtype)
    return p, q, _axis(fn, axis, p.ndim)


@functools.partial(jax.jit, static_argnames=("scale",))
def _information_jit(p, *, scale):
    if _checks.checks_enabled():
        _checks.check_in_unit_interval("information", "probability", p)
    return _information(_Config(None, scale), p)


def information(p: ArrayLike, base: float = math.e) -> jax.Array:
    r"""Self-information (surprisal) of probabilities, elementwise.

    .. math:: I(p) = -\log_b p

    Args:
      p: probabilities, any shape.
      base: ``e`` for nats, 2 for bits; ``> 0`` and ``!= 1``.

    Returns:
      ``-log_b p`` of ``p``'s shape (``inf`` at ``p = 0``).

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxloss import info
      >>> print(info.information(jnp.array([0.5, 0.25, 1.0]), base=2))
      [1. 2. 0.]
    """
    fn = "information"
    return _information_jit(_probs(fn, "p", p), scale=_scale(base, fn))


@functools.partial(jax.jit, static_argnames=("kind", "axis", "scale"))
def _reduce_jit(p, q, *, kind, axis, scale):
    if _checks.checks_enabled():
        for name, v in (("p", p), ("q", q)):
            if v is not None:
                _checks.check_in_unit_interval(kind, f"probability in {name}", v)
    config = _Config(axis, scale)
    if kind == "entropy":
        return _entropy(config, p)
    rule = {"cross_entropy": _cross_entropy, "kl_divergence": _kl, "js_divergence": _js}[kind]
    return rule(config, p, q)


def entropy(p: ArrayLike, base: float = math.e, *, axis: int = -1) -> jax.Array:
    r"""Shannon entropy of distributions.

    .. math:: H(p) = -\sum_c p_c \log_b p_c, \qquad 0 \log 0 = 0

    Args:
      p: probabilities, distributions along ``axis``.
      base: ``e`` for nats, 2 for bits.
      axis: the axis that holds each distribution.

    Returns:
      Entropies, ``p``'s shape without ``axis``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxloss import info
      >>> print(info.entropy(jnp.array([[0.5, 0.5], [1.0, 0.0]]), base=2))  # 1 bit, 0
      [1. 0.]
    """
    fn = "entropy"
    p = _probs(fn, "p", p)
    return _reduce_jit(
        p, None, kind="entropy", axis=_axis(fn, axis, p.ndim), scale=_scale(base, fn)
    )


def cross_entropy(p: ArrayLike, q: ArrayLike, base: float = math.e, *, axis: int = -1) -> jax.Array:
    r"""Cross-entropy of ``q`` relative to ``p``: the cost of coding ``p`` with ``q``.

    .. math:: H(p, q) = -\sum_c p_c \log_b q_c = H(p) + \operatorname{KL}(p \,\|\, q)

    ``inf`` where ``q_c = 0 < p_c``; a class with ``p_c = 0`` adds 0.

    Args:
      p: the true distribution(s).
      q: the predicted distribution(s), ``p``'s shape.
      base: ``e`` for nats, 2 for bits.
      axis: the axis that holds each distribution.

    Returns:
      Cross-entropies, the shape without ``axis``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxloss import info
      >>> print(info.cross_entropy(jnp.array([1.0, 0.0]), jnp.array([0.25, 0.75]), base=2))
      2.0
    """
    fn = "cross_entropy"
    p, q, axis = _pair(fn, p, q, axis)
    return _reduce_jit(p, q, kind="cross_entropy", axis=axis, scale=_scale(base, fn))


def kl_divergence(p: ArrayLike, q: ArrayLike, base: float = math.e, *, axis: int = -1) -> jax.Array:
    r"""Kullback-Leibler divergence ``KL(p || q)``, in nats or bits.

    .. math:: \operatorname{KL}(p \,\|\, q) = \sum_c p_c \log_b \frac{p_c}{q_c}

    ``>= 0``, 0 exactly when ``p = q``; ``inf`` where ``q_c = 0 < p_c``; a class with
    ``p_c = 0`` adds 0. Not symmetric: ``p`` is the reference distribution.

    Args:
      p: the reference distribution(s).
      q: the approximating distribution(s), ``p``'s shape.
      base: ``e`` for nats, 2 for bits.
      axis: the axis that holds each distribution.

    Returns:
      Divergences, the shape without ``axis``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxloss import info
      >>> print(info.kl_divergence(jnp.array([0.5, 0.5]), jnp.array([0.25, 0.75]), base=2))
      0.2075
    """
    fn = "kl_divergence"
    p, q, axis = _pair(fn, p, q, axis)
    return _reduce_jit(p, q, kind="kl_divergence", axis=axis, scale=_scale(base, fn))


def js_divergence(p: ArrayLike, q: ArrayLike, base: float = math.e, *, axis: int = -1) -> jax.Array:
    r"""Jensen-Shannon divergence, symmetric and bounded.

    .. math::
        \operatorname{JS}(p, q) = \tfrac12 \operatorname{KL}(p \,\|\, m)
          + \tfrac12 \operatorname{KL}(q \,\|\, m), \qquad m = \tfrac12 (p + q)

    Between 0 and ``log_b 2`` (1 bit).

    Args:
      p: distribution(s).
      q: distribution(s), ``p``'s shape.
      base: ``e`` for nats, 2 for bits.
      axis: the axis that holds each distribution.

    Returns:
      Divergences, the shape without ``axis``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxloss import info
      >>> print(info.js_divergence(jnp.array([1.0, 0.0]), jnp.array([0.0, 1.0]), base=2))
      1.0
    """
    fn = "js_divergence"
    p, q, axis = _pair(fn, p, q, axis)
    return _reduce_jit(p, q, kind="js_divergence", axis=axis, scale=_scale(base, fn))
