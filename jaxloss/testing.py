"""Testing helpers for losses with hand-written derivative rules.

:func:`check_derivatives` is what jaxloss's own tests use on every loss, and what a
user can run on a loss they write with ``jax.custom_jvp`` or ``jax.custom_vjp``.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.test_util import check_grads

__all__ = ["check_derivatives"]

_MODES = ("fwd", "rev")


def check_derivatives(
    fn: Callable[..., Any],
    reference_fn: Callable[..., Any] | None,
    *args: Any,
    argnums: int | Sequence[int] | None = None,
    order: int = 2,
    modes: Sequence[str] = _MODES,
    rtol: float = 1e-6,
    atol: float = 1e-9,
    fd_rtol: float | None = None,
    fd_atol: float | None = None,
    fd_eps: float = 1e-6,
    seed: int = 0,
    jit: bool = True,
) -> dict[str, float]:
    r"""Checks ``fn``'s derivative rules against autodiff and finite differences.

    Everything runs in float64 (inside ``jax.enable_x64``; floating arguments are cast
    to float64), at the given point ``args``:

    1. the value: ``fn(*args)`` against ``reference_fn(*args)``;
    2. every composition of the ``modes`` up to ``order`` (for order 2 and both
       modes: ``fwd``, ``rev``, ``fwd-fwd``, ``fwd-rev``, ``rev-fwd``, ``rev-rev``, where
       ``fwd-rev`` is a JVP of a VJP, the way ``jax.hessian`` differentiates) applied
       to ``fn`` and to ``reference_fn`` along the same seeded random tangents and
       cotangents: ``fn``'s hand-written rules against plain autodiff of the
       reference formula;
    3. ``jax.test_util.check_grads(fn, ..., order, modes)``'s checks: ``fn``'s
       derivatives against central finite differences, to ``order`` (with ``jit``,
       all of them in one compiled program, with the same directions and
       tolerances).

    Args:
      fn: the function under test; positional array arguments, a pytree of float
        arrays out. Bind keyword options with ``functools.partial``.
      reference_fn: a plain formula for the same function, differentiated by JAX's
        autodiff; None skips checks 1 and 2.
      *args: the point at which to check. Integer and boolean arguments are passed
        through unchanged and not differentiated.
      argnums: which arguments to differentiate; default: every floating one.
      order: highest derivative order checked (2 covers Hessians).
      modes: ``"fwd"`` (JVPs) and/or ``"rev"`` (VJPs).
      rtol, atol: tolerances of the comparisons with the reference
        (``|a - b| <= atol + rtol * |b|`` elementwise, NaN only matching NaN).
      fd_rtol, fd_atol, fd_eps: tolerances (``check_grads``'s defaults when None) and
        step of the finite-difference check. In float64 a step of 1e-6 keeps both the
        truncation error (step squared times the third derivative) and the rounding
        error (1e-16 over the step) small, also near the edges of a domain.
      seed: seeds the random tangents and cotangents.
      jit: compile each derivative with ``jax.jit`` (much faster than running it op
        by op); set False for a function that cannot be jitted.

    Returns:
      A dict from each check's name to the largest absolute difference it saw.

    Raises:
      AssertionError: listing every check that failed, with the argument, the
        largest error, where it occurred and the two values there.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jaxloss.testing import check_derivatives
      >>> @jax.custom_jvp
      ... def softplus(x):
      ...     return jnp.logaddexp(x, 0.0)
      >>> @softplus.defjvp
      ... def softplus_jvp(primals, tangents):
      ...     (x,), (dx,) = primals, tangents
      ...     return softplus(x), jax.nn.sigmoid(x) * dx
      >>> reference = lambda x: jnp.log1p(jnp.exp(x))
      >>> report = check_derivatives(softplus, reference, jnp.array([-2.0, 0.5, 3.0]))
      >>> sorted(report)[:3]
      ['finite differences (order 2, fwd+rev)', 'fwd', 'fwd-fwd']
      >>> @jax.custom_jvp
      ... def wrong(x):
      ...     return jnp.logaddexp(x, 0.0)
      >>> _ = wrong.defjvp(lambda p, t: (wrong(p[0]), 0.9 * jax.nn.sigmoid(p[0]) * t[0]))
      >>> check_derivatives(wrong, reference, jnp.array([0.5]), order=1)
      Traceback (most recent call last):
      ...
      AssertionError: check_derivatives: 3 check(s) failed ...
    """
    if order < 1:
        raise ValueError(f"check_derivatives: order must be >= 1, got {order}")
    modes = tuple(modes)
    if not modes or any(m not in _MODES for m in modes):
        raise ValueError(
            f"check_derivatives: modes must be a non-empty subset of {_MODES}, got {modes}"
        )
    with jax.enable_x64(True):
        return _check(
            fn,
            reference_fn,
            args,
            argnums,
            order,
            modes,
            rtol,
            atol,
            fd_rtol,
            fd_atol,
            fd_eps,
            seed,
            jit,
        )


def _is_floating(x: Any) -> bool:
    dtype = getattr(x, "dtype", None)
    if dtype is None:
        return isinstance(x, float)
    return jnp.issubdtype(dtype, jnp.floating)


def _to_f64(x: Any) -> Any:
    return jnp.asarray(x, jnp.float64) if _is_floating(x) else x


def _check(
    fn, reference_fn, args, argnums, order, modes, rtol, atol, fd_rtol, fd_atol, fd_eps, seed, jit
):
    args = tuple(_to_f64(a) for a in args)
    if argnums is None:
        argnums = tuple(i for i, a in enumerate(args) if _is_floating(a))
    elif isinstance(argnums, int):
        argnums = (argnums,)
    argnums = tuple(argnums)
    if not argnums:
        raise ValueError("check_derivatives: no floating argument to differentiate")
    for i in argnums:
        if not -len(args) <= i < len(args) or not _is_floating(args[i]):
            raise ValueError(f"check_derivatives: argnums entry {i} is not a floating argument")
    argnums = tuple(i % len(args) for i in argnums)
    primals = tuple(args[i] for i in argnums)

    def restrict(g):
        def h(*diff_args):
            full = list(args)
            for i, a in zip(argnums, diff_args):
                full[i] = a
            return g(*full)

        return h

    maybe_jit = jax.jit if jit else (lambda g: g)
    f = maybe_jit(restrict(fn))
    failures: list[str] = []
    report: dict[str, float] = {}

    if reference_fn is not None:
        ref = maybe_jit(restrict(reference_fn))
        err, problem = _compare(f(*primals), ref(*primals), rtol, atol)
        report["value"] = err
        if problem:
            failures.append(f"value: fn differs from reference_fn: {problem}")
        key = jax.random.key(seed)
        pairs = []  # (name, order, d_f, d_ref), each with its own random directions
        for length in range(1, order + 1):
            for path in itertools.product(modes, repeat=length):
                key, sub = jax.random.split(key)
                pairs.append(("-".join(reversed(path)), length, path, sub))
        try:  # every composition in one compiled program: one compilation, not dozens
            derived = [_derive_pair(f, ref, primals, path, sub) for _, _, path, sub in pairs]
            values = maybe_jit(lambda *p: [(d_f(*p), d_ref(*p)) for d_f, d_ref in derived])(
                *primals
            )
        except Exception:  # some rule does not run: find which, one by one
            values = None
        for i, (name, length, path, sub) in enumerate(pairs):
            try:
                if values is None:
                    d_f, d_ref = _derive_pair(f, ref, primals, path, sub)
                    got, want = maybe_jit(d_f)(*primals), maybe_jit(d_ref)(*primals)
                else:
                    got, want = values[i]
                err, problem = _compare(got, want, rtol, atol)
            except Exception as e:  # a rule that does not even run
                err = float("nan")
                problem = f"raised {type(e).__name__}: {str(e).splitlines()[0]}"
            report[name] = err
            if problem:
                failures.append(
                    f"{name} derivative (order {length}) of fn differs from "
                    f"autodiff of reference_fn: {problem}"
                )

    fd_name = f"finite differences (order {order}, {'+'.join(modes)})"
    try:
        if jit:
            _check_grads_compiled(f, primals, order, modes, fd_atol, fd_rtol, fd_eps)
        else:
            check_grads(f, primals, order, modes=modes, atol=fd_atol, rtol=fd_rtol, eps=fd_eps)
        report[fd_name] = 0.0
    except AssertionError as e:
        report[fd_name] = float("nan")
        lines = [ln for ln in str(e).strip().splitlines() if ln.strip()]
        failures.append(f"{fd_name}: " + " | ".join(lines[:8]))
    except Exception as e:  # a rule that does not even run in some mode
        report[fd_name] = float("nan")
        failures.append(f"{fd_name}: raised {type(e).__name__}: {str(e).splitlines()[0]}")

    if failures:
        where = f"arguments {argnums} of shapes " + ", ".join(
            str(tuple(np.shape(p))) for p in primals
        )
        raise AssertionError(
            f"check_derivatives: {len(failures)} check(s) failed for {where}:\n- "
            + "\n- ".join(failures)
        )
    return report


# ``jax.test_util.check_grads``'s default tolerances (of the gradient checks), by dtype.
_FD_TOLERANCE = {
    np.dtype(jnp.bfloat16): 1e-1,
    np.dtype(np.float16): 1e-2,
    np.dtype(np.float32): 2e-3,
    np.dtype(np.float64): 1e-5,
    np.dtype(np.complex64): 1e-3,
    np.dtype(np.complex128): 1e-5,
}


def _check_grads_compiled(f, primals, order, modes, atol, rtol, eps):
    """``jax.test_util.check_grads(f, primals, order, modes, atol, rtol, eps)``, with
    every derivative and finite difference it takes computed in one compiled program
    (``check_grads`` runs each transformation op by op, which compiles a dozen
    programs per call): the same checks (a JVP against a central difference along a
    random tangent, a VJP's projection against the difference's, each for the
    function and, to ``order``, for its JVP and VJP), the same random directions
    (a fresh ``np.random.RandomState(0)`` per check) and the same tolerances.
    A function that does not trace is handed to ``check_grads`` itself, for its
    error."""
    eps = eps or 1e-4  # check_grads's default step
    checks = []  # (message, host data), one per comparison, filled while tracing

    def numerical_jvp(g, args, tangent):
        plus = jax.tree.map(lambda a, t: a + eps * t, args, tangent)
        minus = jax.tree.map(lambda a, t: a - eps * t, args, tangent)

        def diff(a, b):  # inf - inf is 0, as check_grads's safe subtraction
            return jnp.where(a == b, jnp.zeros_like(a), a - b) * (0.5 / eps)

        return jax.tree.map(diff, g(*plus), g(*minus))

    def derived(g, args, order, msg, outs):
        if "fwd" in modes:
            m = f"JVP of {msg}" if msg else "JVP"
            rng = np.random.RandomState(0)
            tangent = jax.tree.map(lambda a: _rand_like(rng, a), args)
            v_out, t_out = jax.jvp(g, args, tangent)
            checks.append((f"{m} primal", None))
            outs.append((v_out, g(*args)))
            checks.append((f"{m} tangent", None))
            outs.append((t_out, numerical_jvp(g, args, tangent)))
            if order > 1:
                derived(functools.partial(jax.jvp, g), (args, args), order - 1, m, outs)
        if "rev" in modes:
            m = f"VJP of {msg}" if msg else "VJP"
            rng = np.random.RandomState(0)
            v_out, vjp = jax.vjp(g, *args)
            checks.append((f"{m} primal", None))
            outs.append((v_out, g(*args)))
            tangent = jax.tree.map(lambda a: _rand_like(rng, a), args)
            cotangent = jax.tree.map(lambda a: _rand_like(rng, a), v_out)
            checks.append((f"{m} cotangent projection", (tangent, cotangent)))
            conj = functools.partial(jax.tree.map, jnp.conj)
            outs.append((conj(vjp(conj(cotangent))), numerical_jvp(g, args, tangent)))
            if order > 1:

                def g_vjp(*args, g=g):
                    out, vjp = jax.vjp(g, *args)
                    return vjp(out)

                derived(g_vjp, args, order - 1, m, outs)

    def program(*args):
        outs = []
        derived(f, args, order, "", outs)
        return outs

    try:
        values = jax.jit(program)(*primals)
    except Exception:  # let check_grads raise the error of the step that fails
        checks.clear()
        check_grads(f, primals, order, modes=modes, atol=atol, rtol=rtol, eps=eps)
        raise
    for (msg, directions), (actual, expected) in zip(checks, values):
        if directions is not None:  # <tangent, vjp(cotangent)> == <jvp(tangent), cotangent>
            tangent, cotangent = directions
            actual = _inner(tangent, actual)
            expected = _inner(expected, cotangent)
        jax.tree.map(functools.partial(_assert_close, atol, rtol, msg), actual, expected)


def _rand_like(rng, x):
    """A standard normal array of ``x``'s shape and dtype (``check_grads``'s)."""
    dtype = np.dtype(x.dtype)
    out = np.asarray(rng.randn(*np.shape(x)), dtype=dtype)
    if np.issubdtype(dtype, np.complexfloating):
        out = out + dtype.type(1j) * np.asarray(rng.randn(*np.shape(x)), dtype=dtype)
    return out


def _inner(xs, ys):
    def contract(x, y):
        return np.real(np.dot(np.conj(np.asarray(x)).reshape(-1), np.asarray(y).reshape(-1)))

    return functools.reduce(np.add, jax.tree.leaves(jax.tree.map(contract, xs, ys)))


def _assert_close(atol, rtol, msg, a, b):
    """``check_grads``'s comparison: its tolerances times the number of elements."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape, f"{msg}: shape {a.shape} != {b.shape}"

    def tol(given, dtype):
        return _FD_TOLERANCE[np.dtype(dtype)] if given is None else given

    kw = {}
    if atol_ := max(tol(atol, a.dtype), tol(atol, b.dtype)):
        kw["atol"] = atol_ * a.size
    if rtol_ := max(tol(rtol, a.dtype), tol(rtol, b.dtype)):
        kw["rtol"] = rtol_ * b.size
    with np.errstate(invalid="ignore"):
        np.testing.assert_allclose(a, b, err_msg=msg, **kw)


def _random_like(key, tree):
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    keys = jax.random.split(key, max(len(leaves), 1))
    out = []
    for k, leaf in zip(keys, leaves):
        if jnp.issubdtype(leaf.dtype, jnp.floating):
            out.append(jax.random.normal(k, leaf.shape, leaf.dtype))
        else:  # integer outputs have float0 cotangents
            out.append(np.zeros(leaf.shape, jax.dtypes.float0))
    return jax.tree_util.tree_unflatten(treedef, out)


def _derive_pair(f, ref, primals, path, key):
    """Applies the derivative steps in ``path`` (innermost first) to f and ref."""
    for step in path:
        key, sub = jax.random.split(key)
        if step == "fwd":
            tangents = _random_like(sub, primals)
            f, ref = (functools.partial(_jvp_out, g, tangents) for g in (f, ref))
        else:
            cotangent = _random_like(sub, jax.eval_shape(ref, *primals))
            f, ref = (functools.partial(_vjp_out, g, cotangent) for g in (f, ref))
    return f, ref


def _jvp_out(g, tangents, *primals):
    return jax.jvp(g, primals, tangents)[1]


def _vjp_out(g, cotangent, *primals):
    return jax.vjp(g, *primals)[1](cotangent)


def _compare(actual, expected, rtol, atol) -> tuple[float, str]:
    """Largest absolute difference, and a description of the worst mismatch."""
    a_leaves, a_def = jax.tree_util.tree_flatten(actual)
    e_leaves, e_def = jax.tree_util.tree_flatten_with_path(expected)
    if a_def != jax.tree_util.tree_structure(expected):
        return float("nan"), f"output structure {a_def} != {e_def}"
    worst, problems = 0.0, []
    for a, (path, e) in zip(a_leaves, e_leaves):
        a = np.asarray(a, np.float64)
        e = np.asarray(e, np.float64)
        label = jax.tree_util.keystr(path) or "output"
        if a.shape != e.shape:
            problems.append(f"{label}: shape {a.shape} != {e.shape}")
            continue
        nan_mismatch = np.isnan(a) != np.isnan(e)
        with np.errstate(invalid="ignore"):
            diff = np.where(np.isnan(a) & np.isnan(e), 0.0, np.abs(a - e))
            diff = np.where(a == e, 0.0, diff)  # equal infinities
            bad = nan_mismatch | ~(diff <= atol + rtol * np.abs(e))
        finite = diff[np.isfinite(diff)]
        if finite.size:
            worst = max(worst, float(finite.max()))
        if bad.any():
            score = np.where(bad, np.nan_to_num(diff, nan=np.inf, posinf=np.inf), -1)
            idx = np.unravel_index(int(np.argmax(score)), a.shape) if a.ndim else ()
            problems.append(
                f"{label}: {int(bad.sum())} of {a.size} elements differ, worst at "
                f"index {tuple(int(i) for i in idx)}: got {a[idx]!r}, "
                f"expected {e[idx]!r} (rtol={rtol}, atol={atol})"
            )
    return worst, "; ".join(problems)
