"""Every argument check, and the run-time checked mode.

Two kinds of input, two kinds of check (``docs/semantics.md``, "Bad values"):

* What is known at trace time (shapes, dtypes, Python numbers, NumPy arrays given as
  parameters) is checked when the function is traced, and a bad value raises a
  ``TypeError`` or ``ValueError`` naming the function, the argument and its shape.
* What is only known at run time (labels, targets and probabilities, and parameters
  passed as JAX arrays) has a documented run-time result: the affected examples' values
  are NaN. :func:`checked` turns those into errors naming the bad value.
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
RESIDUALS = ("auto", "lse", "softmax")

_F = TypeVar("_F", bound=Callable[..., Any])


def _shape(x: Any) -> tuple[int, ...]:
    return tuple(np.shape(x))


# --------------------------------------------------------------------------------------
# Arrays: dtypes, ranks, shapes.


def as_array(x: Any, name: str, fn: str) -> jax.Array:
    """``x`` as a JAX array, or a ``TypeError`` naming the argument."""
    if isinstance(x, jax.Array):
        return x
    try:
        return jnp.asarray(x)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{fn}: {name} must be an array, got {type(x).__name__}") from e


def check_floating(x: jax.Array, name: str, fn: str) -> None:
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(
            f"{fn}: {name} must have a floating dtype, got {x.dtype} (shape {_shape(x)})"
        )


def check_integer(x: jax.Array, name: str, fn: str, hint: str = "") -> None:
    if not jnp.issubdtype(x.dtype, jnp.integer):
        raise TypeError(
            f"{fn}: {name} must have an integer dtype, got {x.dtype} (shape {_shape(x)}){hint}"
        )


def check_real(x: jax.Array, name: str, fn: str) -> None:
    """Real numbers or booleans (targets and labels may be one-hot integers)."""
    ok = jnp.issubdtype(x.dtype, jnp.number) or x.dtype == jnp.bool_
    if not ok or jnp.issubdtype(x.dtype, jnp.complexfloating):
        raise TypeError(f"{fn}: {name} must be real numbers, got {x.dtype} (shape {_shape(x)})")


def check_rank(x: jax.Array, name: str, fn: str, min_ndim: int = 1) -> None:
    if x.ndim < min_ndim:
        raise ValueError(
            f"{fn}: {name} must have at least {min_ndim} dimension(s), got shape {_shape(x)}"
        )


def check_same_shape(fn: str, logits: jax.Array, other: Any, name: str, hint: str = ""):
    """``other`` as an array of the logits' shape, or a ValueError naming both."""
    other = as_array(other, name, fn)
    if other.shape != logits.shape:
        raise ValueError(
            f"{fn}: {name} has shape {_shape(other)} but logits have shape "
            f"{_shape(logits)}; {name} needs the logits' shape{hint}"
        )
    return other


def check_broadcastable(
    value: Any, shape: tuple[int, ...], name: str, fn: str, what: str = "logits"
) -> jax.Array:
    """``value`` as an array that broadcasts to ``shape``, or a ValueError."""
    value = as_array(value, name, fn)
    try:
        ok = np.broadcast_shapes(value.shape, shape) == tuple(shape)
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(
            f"{fn}: {name} has shape {_shape(value)}, which does not broadcast to "
            f"the {what}' shape {tuple(shape)}"
        )
    return value


# --------------------------------------------------------------------------------------
# The class axis.


def canonicalize_axes(
    axis: int | Sequence[int] | None, shape: tuple[int, ...], name: str, fn: str
) -> tuple[int, ...]:
    """Non-negative, distinct class axes in the order given (the order a tuple of axes
    is flattened in, as in optax); ``None`` means all axes, in order."""
    ndim = len(shape)
    if axis is None:
        return tuple(range(ndim))
    try:
        axes = (axis,) if isinstance(axis, int | np.integer) else tuple(axis)
    except TypeError as e:
        raise TypeError(f"{fn}: axis must be an int or a tuple of ints, got {axis!r}") from e
    out = []
    for a in axes:
        if isinstance(a, bool):
            raise TypeError(f"{fn}: axis must be an int or a tuple of ints, got {axis!r}")
        try:
            a = operator.index(a)
        except TypeError as e:
            raise TypeError(f"{fn}: axis must be an int or a tuple of ints, got {axis!r}") from e
        if not -ndim <= a < ndim:
            raise ValueError(f"{fn}: axis={axis!r} is out of range for {name} of shape {shape}")
        out.append(a % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"{fn}: axis={axis!r} repeats an axis")
    if not out:
        raise ValueError(f"{fn}: axis={axis!r} names no axis")
    return tuple(out)


def check_num_classes(shape: tuple[int, ...], axes: tuple[int, ...], name: str, fn: str) -> int:
    """The number of classes (the product of the class axes' sizes), at least 1."""
    num_classes = math.prod(shape[a] for a in axes)
    if num_classes == 0:
        raise ValueError(
            f"{fn}: {name} of shape {shape} has no classes along axis "
            f"{axes[0] if len(axes) == 1 else axes}; a distribution needs at least one"
        )
    return num_classes


# --------------------------------------------------------------------------------------
# Static options (Python numbers known at trace time).


def static_float(value: Any, name: str, fn: str) -> float:
    """A finite Python float from a number known at trace time."""
    if isinstance(value, jax.core.Tracer):
        raise TypeError(
            f"{fn}: {name} must be a Python number known at trace time, not a traced "
            f"array; pass it as a static argument (e.g. jax.jit(..., static_argnames=...))"
        )
    if np.ndim(value) != 0:
        raise TypeError(f"{fn}: {name} must be a number, got shape {_shape(value)}")
    try:
        v = float(value)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{fn}: {name} must be a number, got {value!r}") from e
    if not math.isfinite(v):
        raise ValueError(f"{fn}: {name} must be finite, got {v}")
    return v


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


def check_positive(value: Any, name: str, fn: str) -> float:
    v = static_float(value, name, fn)
    if not v > 0.0:
        raise ValueError(f"{fn}: {name} must be > 0, got {v}")
    return v


def check_positive_int(value: Any, name: str, fn: str) -> int:
    """A Python or NumPy integer of at least 1 (not a bool), as an int."""
    try:
        v = None if isinstance(value, bool) else operator.index(value)
    except TypeError:
        v = None
    if v is None or v < 1:
        raise ValueError(f"{fn}: {name} must be a positive int, got {value!r}")
    return v


def check_reduction(reduction: Any, fn: str) -> str:
    if reduction not in REDUCTIONS:
        raise ValueError(f"{fn}: reduction must be one of {REDUCTIONS}, got {reduction!r}")
    return reduction


def check_residuals(residuals: Any, fn: str) -> str:
    if residuals not in RESIDUALS:
        raise ValueError(f"{fn}: residuals must be one of {RESIDUALS}, got {residuals!r}")
    return residuals


def check_axis_name(axis_name: Any, fn: str) -> str | None:
    """A mesh axis name bound by the enclosing ``shard_map`` (or None)."""
    if axis_name is None:
        return None
    if not isinstance(axis_name, str):
        raise TypeError(f"{fn}: axis_name must be a mesh axis name (str), got {axis_name!r}")
    try:
        jax.lax.axis_size(axis_name)
    except NameError:
        raise ValueError(
            f"{fn}: axis_name={axis_name!r} is not an axis of the enclosing shard_map "
            "(axis_name= is for calls inside jax.shard_map, on the local shard of the classes)"
        ) from None
    return axis_name


def check_ignore_index(ignore_index: Any, fn: str) -> int | None:
    if ignore_index is None:
        return None
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, int | np.integer):
        raise TypeError(f"{fn}: ignore_index must be a Python int or None, got {ignore_index!r}")
    return int(ignore_index)


# --------------------------------------------------------------------------------------
# Masks and weights.


def check_where(where: Any, shape: tuple[int, ...], fn: str, what: str = "per-example") -> Any:
    """A boolean mask broadcast to ``shape`` (one value per example, or element)."""
    if where is None:
        return None
    where = as_array(where, "where", fn)
    if where.dtype != jnp.bool_:
        raise TypeError(
            f"{fn}: where must be a boolean mask, got dtype {where.dtype} (shape "
            f"{_shape(where)}); for per-example weights use sample_weight"
        )
    try:
        ok = np.broadcast_shapes(where.shape, shape) == tuple(shape)
    except ValueError:
        ok = False
    if not ok:
        hint = " (mask classes with -inf logits instead)" if what == "per-example" else ""
        raise ValueError(
            f"{fn}: where has shape {_shape(where)}, which does not broadcast to "
            f"the {what} shape {tuple(shape)}{hint}"
        )
    return jnp.broadcast_to(where, shape)


def _is_host_value(x: Any) -> bool:
    """A value known at trace time: a Python number or sequence, or a NumPy array."""
    return isinstance(x, int | float | np.ndarray | np.generic | list | tuple)


def check_weights(value: Any, name: str, fn: str, *, upper: float | None = None) -> None:
    """Trace-time check of weights given as host values: finite, ``>= 0`` (and
    ``<= upper``). Weights given as JAX arrays are checked at run time instead (NaN,
    or an error under :func:`checked`)."""
    if not _is_host_value(value):
        return
    arr = np.asarray(value, np.float64)
    bad = ~np.isfinite(arr) | (arr < 0)
    if upper is not None:
        bad |= arr > upper
    if bad.any():
        bound = f"in [0, {upper:g}]" if upper is not None else "finite and >= 0"
        if arr.ndim == 0:
            raise ValueError(f"{fn}: {name} must be {bound}, got {float(arr)}")
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{fn}: {name} must be {bound} everywhere, got {name}"
            f"[{', '.join(map(str, index))}] = {arr[index]} (shape {arr.shape})"
        )


def check_class_weights(class_weights: Any, num_classes: int, fn: str, name="class_weights"):
    """``[C]`` floating class weights (checked for sign where known), or None."""
    if class_weights is None:
        return None
    check_weights(class_weights, name, fn)
    cw = as_array(class_weights, name, fn)
    if cw.ndim != 1 or cw.shape[0] != num_classes:
        raise ValueError(
            f"{fn}: {name} has shape {_shape(cw)} but logits have "
            f"{num_classes} classes; it needs shape ({num_classes},)"
        )
    check_floating(cw, name, fn)
    return cw


def check_sample_weight(sample_weight: Any, shape: tuple[int, ...], fn: str, what: str):
    """Float weights broadcast to the per-example (or per-element) ``shape``."""
    if sample_weight is None:
        return None
    check_weights(sample_weight, "sample_weight", fn)
    sw = check_broadcastable(sample_weight, shape, "sample_weight", fn, what)
    if not jnp.issubdtype(sw.dtype, jnp.floating):
        if not (jnp.issubdtype(sw.dtype, jnp.integer) or sw.dtype == jnp.bool_):
            raise TypeError(f"{fn}: sample_weight must be real numbers, got {sw.dtype}")
        sw = sw.astype(jnp.float32)
    return jnp.broadcast_to(sw, shape)


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


def check_values(fn: str, name: str, values: jax.Array, bad: jax.Array, rule: str) -> None:
    """Checked mode: raise naming the first element of ``values`` where ``bad``."""
    if not checks_enabled() or not bad.size:
        return
    first = jnp.argmax(bad.ravel())
    check(
        ~jnp.any(bad),
        f"{fn}: {name} {{value}} (at flat index {{index}}) {rule}",
        value=values.ravel()[first],
        index=first,
    )


def check_in_unit_interval(fn: str, name: str, values: jax.Array, mask=None) -> None:
    """Checked mode: every (unmasked) value in [0, 1]."""
    if not checks_enabled():
        return
    v = values.astype(jnp.promote_types(values.dtype, jnp.float32))
    bad = ~((v >= 0) & (v <= 1))
    if mask is not None:
        bad = bad & mask
    check_values(fn, name, values, bad, "is outside [0, 1]")


def check_nonnegative_values(fn: str, name: str, values: jax.Array, upper=None) -> None:
    """Checked mode: every value finite and >= 0 (and <= upper)."""
    if not checks_enabled():
        return
    ok = jnp.isfinite(values) & (values >= 0)
    if upper is not None:
        ok = ok & (values <= upper)
    rule = f"is outside [0, {upper}]" if upper is not None else "is negative or not finite"
    check_values(fn, name, values, ~ok, rule)


def checked(fn: _F) -> _F:
    """Runs ``fn`` with jaxloss's run-time input checks, raising on a bad value.

    Some mistakes can only be seen in the values: an integer label outside ``[0, C)``
    that is not ``ignore_index``, a target or probability outside [0, 1], a negative
    weight passed as a JAX array. Each gives a NaN loss for the examples it touches
    (never a finite number). Wrapping the training step in ``checked`` makes every
    jaxloss function it calls verify its inputs and raise a ``ValueError``
    (``checkify.JaxRuntimeError``) naming the bad value. The checks cost a pass over
    the inputs, so use it when debugging.

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
