"""Argument checks shared by every loss, and the run-time checked mode.

Everything that can be known from shapes, dtypes and Python values is checked when the
function is traced, and raises a ``TypeError`` or ``ValueError`` that names the function,
the argument and the shapes involved. What can only be seen in the values (an integer
label outside ``[0, C)``) has a documented run-time result (a NaN loss), and
:func:`checked` turns it into an error.
"""

from __future__ import annotations

import contextvars
import functools
import math
import operator
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import checkify

REDUCTIONS = ("none", "mean", "sum")

_F = TypeVar("_F", bound=Callable[..., Any])


def as_array(x: Any, name: str, fn: str) -> jax.Array:
    """``x`` as a JAX array, or a ``TypeError`` naming the argument."""
    if isinstance(x, jax.Array):
        return x
    try:
        return jnp.asarray(x)
    except TypeError as e:
        raise TypeError(f"{fn}: {name} must be an array, got {type(x).__name__}") from e


def check_floating(x: jax.Array, name: str, fn: str) -> None:
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(
            f"{fn}: {name} must have a floating dtype, got {x.dtype} (shape {tuple(x.shape)})"
        )


def check_integer(x: jax.Array, name: str, fn: str, hint: str = "") -> None:
    if not jnp.issubdtype(x.dtype, jnp.integer):
        raise TypeError(
            f"{fn}: {name} must have an integer dtype, got {x.dtype} (shape {tuple(x.shape)}){hint}"
        )


def check_rank(x: jax.Array, name: str, fn: str, min_ndim: int = 1) -> None:
    if x.ndim < min_ndim:
        raise ValueError(
            f"{fn}: {name} must have at least {min_ndim} dimension(s), got shape {tuple(x.shape)}"
        )


def canonicalize_axes(
    axis: int | Sequence[int] | None, ndim: int, name: str, fn: str
) -> tuple[int, ...]:
    """Non-negative, sorted, distinct class axes; ``None`` means all axes."""
    if axis is None:
        return tuple(range(ndim))
    try:
        axes = (axis,) if isinstance(axis, int | np.integer) else tuple(axis)
    except TypeError as e:
        raise TypeError(f"{fn}: axis must be an int or a tuple of ints, got {axis!r}") from e
    out = []
    for a in axes:
        try:
            a = operator.index(a)
        except TypeError as e:
            raise TypeError(f"{fn}: axis must be an int or a tuple of ints, got {axis!r}") from e
        if not -ndim <= a < ndim:
            raise ValueError(
                f"{fn}: axis={axis!r} is out of range for {name} of shape "
                f"{_shape_of(name, ndim)} ({ndim} dimensions)"
            )
        out.append(a % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"{fn}: axis={axis!r} repeats an axis")
    if not out:
        raise ValueError(f"{fn}: axis={axis!r} names no axis")
    return tuple(sorted(out))


def _shape_of(name: str, ndim: int) -> str:
    return f"with {ndim} dims" if ndim else "()"


def check_fraction(value: Any, name: str, fn: str) -> float:
    """A static number in [0, 1] (label smoothing)."""
    v = static_float(value, name, fn)
    if not 0.0 <= v <= 1.0:
        raise ValueError(f"{fn}: {name} must be in [0, 1], got {v}")
    return v


def check_nonnegative(value: Any, name: str, fn: str) -> float:
    v = static_float(value, name, fn)
    if not v >= 0.0:
        raise ValueError(f"{fn}: {name} must be >= 0, got {v}")
    return v


def static_float(value: Any, name: str, fn: str) -> float:
    """A Python float from a number known at trace time."""
    if isinstance(value, jax.core.Tracer):
        raise TypeError(
            f"{fn}: {name} must be a Python number known at trace time, not a traced "
            f"array; pass it as a static argument (e.g. jax.jit(..., static_argnames=...))"
        )
    try:
        v = float(value)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{fn}: {name} must be a number, got {value!r}") from e
    if math.isnan(v):
        raise ValueError(f"{fn}: {name} must not be NaN")
    return v


def check_reduction(reduction: Any, fn: str) -> str:
    if reduction not in REDUCTIONS:
        raise ValueError(f"{fn}: reduction must be one of {REDUCTIONS}, got {reduction!r}")
    return reduction


def check_ignore_index(ignore_index: Any, fn: str) -> int | None:
    if ignore_index is None:
        return None
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, int | np.integer):
        raise TypeError(f"{fn}: ignore_index must be a Python int or None, got {ignore_index!r}")
    return int(ignore_index)


def check_where(where: Any, batch_shape: tuple[int, ...], fn: str) -> jax.Array | None:
    """A boolean mask broadcast to ``batch_shape`` (one value per example)."""
    if where is None:
        return None
    where = as_array(where, "where", fn)
    if where.dtype != jnp.bool_:
        raise TypeError(
            f"{fn}: where must be a boolean mask, got dtype {where.dtype}; for "
            f"per-example weights use class_weights, for class masking -inf logits"
        )
    try:
        shape = np.broadcast_shapes(where.shape, batch_shape)
    except ValueError:
        shape = None
    if shape != tuple(batch_shape):
        raise ValueError(
            f"{fn}: where has shape {tuple(where.shape)}, which does not broadcast to "
            f"the per-example shape {tuple(batch_shape)}; where masks whole examples "
            f"(mask classes with -inf logits instead)"
        )
    return jnp.broadcast_to(where, batch_shape)


def check_class_weights(class_weights: Any, num_classes: int, fn: str) -> jax.Array | None:
    if class_weights is None:
        return None
    cw = as_array(class_weights, "class_weights", fn)
    if cw.ndim != 1 or cw.shape[0] != num_classes:
        raise ValueError(
            f"{fn}: class_weights has shape {tuple(cw.shape)} but logits have "
            f"{num_classes} classes; it needs shape ({num_classes},)"
        )
    if not jnp.issubdtype(cw.dtype, jnp.floating):
        raise TypeError(f"{fn}: class_weights must have a floating dtype, got {cw.dtype}")
    return cw


# --------------------------------------------------------------------------------------
# Checked mode: run-time value checks, opt-in.

_CHECKS: contextvars.ContextVar[bool] = contextvars.ContextVar("jaxloss_checks", default=False)


def checks_enabled() -> bool:
    """Whether the losses being traced now should add run-time checks."""
    return _CHECKS.get()


def check(pred: jax.Array, msg: str, **fmt: jax.Array) -> None:
    """A run-time check, emitted only inside :func:`checked`."""
    if checks_enabled():
        checkify.check(pred, msg, **fmt)


def checked(fn: _F) -> _F:
    """Runs ``fn`` with jaxloss's run-time input checks, raising on a bad value.

    Some mistakes can only be seen in the values: an integer label outside ``[0, C)``
    that is not ``ignore_index`` gives a NaN loss for its example (it never wraps
    around to another class, as optax's does). Wrapping the training step in
    ``checked`` makes every jaxloss function it calls verify its inputs and raise a
    ``ValueError`` (``checkify.JaxRuntimeError``) naming the bad value. The checks cost
    a pass over the labels, so use it when debugging.

    ``fn`` is traced afresh on every call (it goes through
    :func:`jax.experimental.checkify.checkify`), and may contain ``jax.jit``. Call the
    result outside of ``jax.jit``.

    Args:
      fn: any function that calls jaxloss losses.

    Returns:
      A function with ``fn``'s signature and results that raises on bad inputs.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxloss
      >>> logits = jnp.zeros((2, 3))
      >>> labels = jnp.array([0, 7])
      >>> print(jaxloss.sparse_categorical_cross_entropy(logits, labels))
      [1.0986    nan]
      >>> checked_loss = jaxloss.checked(jaxloss.sparse_categorical_cross_entropy)
      >>> checked_loss(logits, labels)
      Traceback (most recent call last):
      ...
      jax...JaxRuntimeError: sparse_categorical_cross_entropy: label 7 (at flat index 1) ...
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        token = _CHECKS.set(True)
        try:
            err, out = checkify.checkify(fn, errors=checkify.user_checks)(*args, **kwargs)
        finally:
            _CHECKS.reset(token)
        err.throw()
        return out

    return wrapper  # type: ignore[return-value]
