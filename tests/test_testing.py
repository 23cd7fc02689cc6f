"""jaxloss.testing.check_derivatives: passes correct rules, catches wrong ones."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxloss
from jaxloss.testing import check_derivatives


def _softplus_reference(x):
    return jnp.log1p(jnp.exp(x))


def _custom_softplus(first=1.0, second=1.0):
    """softplus with a hand-written rule, optionally scaled wrong at order 1 or 2."""

    @jax.custom_jvp
    def f(x):
        return jnp.logaddexp(x, 0.0)

    @f.defjvp
    def f_jvp(primals, tangents):
        (x,), (dx,) = primals, tangents
        s = jax.nn.sigmoid(x)
        # d/dx of (first * s) wrong by `second` at order 2 via a non-differentiated scale
        slope = first * (jax.lax.stop_gradient(s) + second * (s - jax.lax.stop_gradient(s)))
        return f(x), slope * dx

    return f


X = np.array([-3.0, -0.5, 0.2, 2.5])


def test_correct_rule_passes_and_reports_every_check():
    report = check_derivatives(_custom_softplus(), _softplus_reference, X)
    assert set(report) == {
        "value",
        "fwd",
        "rev",
        "fwd-fwd",
        "fwd-rev",
        "rev-fwd",
        "rev-rev",
        "finite differences (order 2, fwd+rev)",
    }
    assert all(v < 1e-9 for v in report.values())


def test_wrong_first_derivative_fails_with_a_clear_report():
    with pytest.raises(AssertionError) as info:
        check_derivatives(_custom_softplus(first=0.9), _softplus_reference, X, order=1)
    msg = str(info.value)
    assert "fwd derivative (order 1) of fn differs from autodiff of reference_fn" in msg
    assert "rev derivative" in msg
    assert "finite differences" in msg
    assert "worst at index" in msg and "expected" in msg


def test_wrong_second_derivative_is_caught_only_at_order_two():
    wrong = _custom_softplus(second=0.5)
    check_derivatives(wrong, _softplus_reference, X, order=1)  # first order is right
    with pytest.raises(AssertionError, match="fwd-fwd derivative"):
        check_derivatives(wrong, _softplus_reference, X, order=2)


def test_finite_differences_alone_catch_a_wrong_rule():
    with pytest.raises(AssertionError, match="finite differences"):
        check_derivatives(_custom_softplus(first=1.1), None, X, order=1)
    check_derivatives(_custom_softplus(), None, X, order=2)


@pytest.mark.parametrize("modes", [("fwd",), ("rev",), ("fwd", "rev")])
@pytest.mark.parametrize("jit", [True, False])
def test_finite_differences_catch_a_wrong_second_derivative_in_each_mode(modes, jit):
    """The finite-difference check (``jax.test_util.check_grads``'s checks, in one
    compiled program under ``jit``) differentiates the JVP and the VJP again at order
    2, so a wrong second derivative fails there and only there."""
    wrong = _custom_softplus(second=0.5)
    check_derivatives(wrong, None, X, order=1, modes=modes, jit=jit)
    with pytest.raises(AssertionError, match="finite differences"):
        check_derivatives(wrong, None, X, order=2, modes=modes, jit=jit)


def test_finite_differences_of_an_infinite_output_are_zero():
    """An output that is ``inf`` on both sides of the step has a central difference of
    0, as in ``check_grads`` (``inf - inf`` read as 0), under ``jit`` or not."""
    x = jnp.array([[0.0, -jnp.inf], [0.3, -0.2]])
    t = jnp.array([[0.5, 0.5], [0.4, 0.6]])
    for jit in (True, False):
        check_derivatives(
            jaxloss.categorical_cross_entropy, None, x, t, argnums=1, order=1, jit=jit
        )


def test_wrong_value_is_reported():
    with pytest.raises(AssertionError, match="value: fn differs"):
        check_derivatives(lambda x: _softplus_reference(x) + 1e-3, _softplus_reference, X)


def test_single_mode_and_argnums_and_integer_args():
    def fn(x, n, y):
        return jnp.sum(x**n * jnp.sin(y))

    n = np.int32(3)
    report = check_derivatives(fn, fn, X, n, X[::-1], argnums=0, modes=("rev",))
    assert "rev-rev" in report and "fwd" not in report
    with pytest.raises(ValueError, match="not a floating argument"):
        check_derivatives(fn, fn, X, n, X, argnums=1)
    with pytest.raises(ValueError, match="modes"):
        check_derivatives(fn, fn, X, n, X, modes=("sideways",))
    with pytest.raises(ValueError, match="order"):
        check_derivatives(fn, fn, X, n, X, order=0)


def test_runs_in_float64_even_from_float32_inputs():
    seen = []

    def fn(x):
        seen.append(x.dtype)
        return jnp.sum(jnp.exp(x))

    check_derivatives(fn, fn, X.astype(np.float32), order=1)
    assert set(seen) == {jnp.dtype(jnp.float64)}


def test_pytree_outputs_and_a_rule_that_raises():
    def two(x):
        return {"a": jnp.sin(x), "b": jnp.sum(x**2)}

    check_derivatives(two, two, X)

    @jax.custom_vjp
    def no_forward(x):
        return jnp.sin(x)

    no_forward.defvjp(lambda x: (jnp.sin(x), x), lambda x, g: (jnp.cos(x) * g,))
    with pytest.raises(AssertionError, match="fwd derivative .* raised"):
        check_derivatives(no_forward, jnp.sin, X, order=1, jit=False)


def test_check_derivatives_of_a_jaxloss_loss():
    import jaxloss

    labels = np.array([0, 2, 1, 2])
    x = np.random.default_rng(0).standard_normal((4, 3))
    check_derivatives(
        functools.partial(jaxloss.sparse_categorical_cross_entropy, labels=labels),
        lambda logits: -jax.nn.log_softmax(logits)[np.arange(4), labels],
        x,
    )
