"""Regression tests for the bugs a fuzzer found (issue 10), each with its minimal
reproducer and a neighbour of the same kind, and for the bad inputs that used to give a
finite, meaningless number."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxloss

KLL = jaxloss.kl_divergence_with_logits
SPARSE = jaxloss.sparse_categorical_cross_entropy
CE = jaxloss.categorical_cross_entropy


# 1. Temperature not a power of two with a large finite teacher logit.
@pytest.mark.parametrize("temperature", [3.0, 10.0, 0.3, 7.0])
@pytest.mark.parametrize("big", [1e12, 1e30, 3e38])
def test_kl_with_logits_large_teacher_logit(temperature, big):
    x = jnp.zeros((2, 2))
    y = jnp.array([[0.0, 0.0], [0.0, big]])
    np.testing.assert_allclose(KLL(x, y, temperature=temperature), [0, math.log(2)], rtol=1e-6)
    # the same row alone gives the same value: no dependence on the batch
    np.testing.assert_allclose(KLL(x[1:], y[1:], temperature=temperature), [math.log(2)])
    gx, gy = jax.grad(lambda x, y: KLL(x, y, temperature=temperature).sum(), (0, 1))(x, y)
    np.testing.assert_allclose(gx[1], np.array([0.5, -0.5]) / temperature, rtol=1e-6)
    assert np.all(np.isfinite(gy)) and np.all(gy[1] == 0)


def test_kl_with_logits_single_class_has_zero_gradient():
    g = jax.grad(lambda y: KLL(jnp.zeros((1, 1)), y, temperature=3.0).sum())(jnp.array([[1e6]]))
    assert g[0, 0] == 0.0


# 2. A temperature below 1 must not overflow.
def test_kl_with_logits_small_temperature():
    out = KLL(jnp.array([[-1e4, 0.0]]), jnp.array([[0.0, 3e38]]), temperature=0.5)
    np.testing.assert_array_equal(out, [0.0])


def test_kl_with_logits_underflowing_student_probability_is_finite():
    # p_1 = e^-1000 underflows, but log p_1 = -1000 is finite: KL is about 499.3
    out = KLL(jnp.array([[0.0, -1000.0]]), jnp.zeros((1, 2)))
    np.testing.assert_allclose(out, [0.5 * 1000 - math.log(2) + 0 * 1.0], rtol=1e-5)


# 3. Rows spanning more than the float range, with a representable loss.
def test_huge_span_values():
    x = jnp.array([[3e38, -3e38]])
    np.testing.assert_allclose(CE(x, jnp.array([[0.5, 0.5]])), [3e38], rtol=1e-6)
    w = jnp.array([1.0, 1e-3])
    np.testing.assert_allclose(SPARSE(x, jnp.array([1]), class_weights=w), [6e35], rtol=1e-6)
    np.testing.assert_allclose(jaxloss.kl_divergence(x, jnp.array([[0.5, 0.5]])), [3e38], rtol=1e-6)
    np.testing.assert_allclose(KLL(x, jnp.zeros((1, 2))), [3e38], rtol=1e-6)
    focal = jaxloss.softmax_focal_loss(x, jnp.array([1]), alpha=jnp.array([1.0, 1e-3]), gamma=0.0)
    np.testing.assert_allclose(focal, [6e35], rtol=1e-6)
    # smoothing over 300 classes: 0.1/300 * (298 * 3e38 + 6e38)
    x300 = jnp.zeros((1, 300)).at[0, 0].set(3e38).at[0, 1].set(-3e38)
    np.testing.assert_allclose(
        SPARSE(x300, jnp.array([0]), label_smoothing=0.1), [0.1 / 300 * 300 * 3e38], rtol=1e-5
    )


def test_huge_span_gradients():
    x = jnp.array([[3e38, -3e38]])
    gy = jax.grad(lambda y: KLL(x, y).sum())(jnp.zeros((1, 2)))
    np.testing.assert_allclose(gy, [[-1.5e38, 1.5e38]], rtol=1e-6)
    gx = jax.grad(lambda x: CE(x, jnp.array([[0.5, 0.5]])).sum())(x)
    np.testing.assert_allclose(gx, [[0.5, -0.5]])


# 4. Focal loss at gamma 0 equals class-weighted cross-entropy, -inf logits included.
def test_focal_gamma_zero_equals_weighted_ce_with_neg_inf():
    x = jnp.array([[0.0, -jnp.inf], [0.0, 1.0]])
    y = jnp.array([1, 0])
    a = jnp.array([1.0, 0.0])
    focal = jaxloss.softmax_focal_loss(x, y, alpha=a, gamma=0.0)
    np.testing.assert_allclose(focal, SPARSE(x, y, class_weights=a))
    np.testing.assert_allclose(focal, [0.0, math.log(1 + math.e)], rtol=1e-6)
    assert jaxloss.softmax_focal_loss(x, y, alpha=a, gamma=0.0, reduction="sum") >= 0


# 5. Reverse-over-reverse equals the Hessian and stays finite.
def _all_second_orders(f, x):
    h = jax.hessian(f)(x)
    for name, g in {
        "rev-rev": jax.jacrev(jax.jacrev(f)),
        "fwd-rev": jax.jacfwd(jax.jacrev(f)),
        "rev-fwd": jax.jacrev(jax.jacfwd(f)),
        "fwd-fwd": jax.jacfwd(jax.jacfwd(f)),
    }.items():
        got = g(x)
        assert np.all(np.isfinite(got)), name
        np.testing.assert_allclose(got, h, rtol=1e-5, atol=1e-7, err_msg=name)
    return h


def test_reverse_kl_second_order_with_neg_inf_logit():
    t = jnp.array([[0.3, 0.2, 0.5]])
    h = _all_second_orders(
        lambda x: jaxloss.reverse_kl_divergence(x, t).sum(), jnp.array([[1.0, -jnp.inf, 2.0]])
    )
    assert np.all(h.reshape(3, 3)[1] == 0)


@pytest.mark.parametrize("sparse", [True, False])
def test_masked_rows_second_order_are_exactly_zero(sparse):
    x = jnp.array([[1.0, 0.5, 2.0], [jnp.nan, 0.0, jnp.inf]])
    where = jnp.array([True, False])
    if sparse:
        f = lambda x: SPARSE(x, jnp.array([0, 1]), where=where, reduction="sum")  # noqa: E731
    else:
        t = jnp.array([[0.2, 0.3, 0.5], [jnp.nan, 2.0, -1.0]])
        f = lambda x: CE(x, t, where=where, reduction="sum")  # noqa: E731
    h = _all_second_orders(f, x).reshape(6, 6)
    assert np.all(h[3:] == 0) and np.all(h[:, 3:] == 0)


# 6. Empty batches and no classes.
def test_empty_batch_with_tuple_axes():
    out = SPARSE(jnp.zeros((0, 2, 3)), jnp.zeros((0,), jnp.int32), axis=(1, 2))
    assert out.shape == (0,)
    assert (
        SPARSE(jnp.zeros((0, 2, 3)), jnp.zeros((0,), jnp.int32), axis=(1, 2), reduction="mean") == 0
    )


def test_no_classes_is_a_clear_error():
    with pytest.raises(ValueError, match=r"logits of shape \(3, 0\) has no classes"):
        SPARSE(jnp.zeros((3, 0)), jnp.zeros((3,), jnp.int32))
    with pytest.raises(ValueError, match="logits"):
        CE(jnp.zeros((3, 0)), jnp.zeros((3, 0)))


# 7. Class axes are flattened in the order given, as optax does.
def test_axis_order_is_the_flattening_order():
    x = jnp.arange(6.0).reshape(1, 2, 3)
    y = jnp.array([1])
    ours = SPARSE(x, y, axis=(2, 1))
    np.testing.assert_allclose(ours, [2.4561934], rtol=1e-6)
    np.testing.assert_allclose(
        ours, optax.softmax_cross_entropy_with_integer_labels(x, y, axis=(2, 1)), rtol=1e-6
    )


# 8. The gradient with respect to soft targets, where lse - x_c cancels.
def test_targets_gradient_precision():
    x = jnp.array([20.0, 10.0, -40.0])
    g = jax.grad(lambda t: CE(x, t))(jnp.array([0.0, 0.5, 0.5]))
    exact = math.log1p(math.exp(-10) + math.exp(-60))  # -log p_0
    np.testing.assert_allclose(g[0], exact, rtol=1e-3)  # was 0.8% off


# ------------------------------------------------------------------ bad input
def test_bad_static_values_raise_naming_the_argument():
    x, y = jnp.zeros((2, 3)), jnp.array([0, 1])
    with pytest.raises(ValueError, match=r"class_weights must be finite and >= 0"):
        SPARSE(x, y, class_weights=np.array([1.0, -1.0, 0.0]))
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\], got 1.5"):
        jaxloss.sigmoid_focal_loss(x, jnp.ones_like(x), alpha=np.float32(1.5))
    with pytest.raises(ValueError, match="temperature must be finite"):
        KLL(x, x, temperature=float("inf"))
    with pytest.raises(ValueError, match="gamma must be finite"):
        jaxloss.sigmoid_focal_loss(x, jnp.ones_like(x), gamma=float("inf"))
    with pytest.raises(ValueError, match=r"axis=5 is out of range for logits of shape \(2, 3\)"):
        SPARSE(x, y, axis=5)
    with pytest.raises(ValueError, match="^softmax_cross_entropy_with_integer_labels: labels"):
        jaxloss.softmax_cross_entropy_with_integer_labels(x, jnp.zeros((3,), jnp.int32))


def test_bad_run_time_values_are_nan_and_checked_raises():
    x, y = jnp.zeros((2, 3)), jnp.array([0, 1])
    cases = {
        "class weight": lambda w: SPARSE(x, y, class_weights=w, reduction="mean"),
        "alpha": lambda a: jaxloss.softmax_focal_loss(x, y, alpha=a),
        "pos_weight": lambda q: jaxloss.sigmoid_cross_entropy(x, jnp.ones_like(x), pos_weight=q),
    }
    bad = jnp.array([1.0, -1.0, 0.0])
    for name, f in cases.items():
        assert np.isnan(jax.jit(f)(bad)).any(), name
    assert np.isnan(
        jax.jit(lambda a: jaxloss.sigmoid_focal_loss(x, jnp.ones_like(x), alpha=a))(1.5)
    ).all()
    assert np.isnan(jaxloss.sigmoid_cross_entropy(x, 2 * jnp.ones_like(x))).all()
    assert np.isnan(jaxloss.binary_cross_entropy(jnp.full(2, 0.5), jnp.array([2.0, 0.0])))[0]
    js = jaxloss.js_divergence(x, jnp.array([[1.5, -0.5, 0.0], [1 / 3, 1 / 3, 1 / 3]]))
    assert np.isnan(js[0]) and js[1] == pytest.approx(0.0, abs=1e-7)
    assert np.isnan(jaxloss.info.information(1.5))
    with pytest.raises(Exception, match=r"target 1.5 \(at flat index 0\) is outside \[0, 1\]"):
        jaxloss.checked(CE)(jnp.zeros((1, 3)), jnp.array([[1.5, -0.5, 0.0]]))


def test_loss_histogram_of_nothing():
    edges, fractions = jaxloss.diagnostics.loss_histogram(jnp.zeros((0,)), bins=2)
    np.testing.assert_allclose(edges, [0.0, 0.5, 1.0])
    np.testing.assert_array_equal(fractions, [0.0, 0.0])


# Found by the 400-example fuzz run of this session.
def test_reverse_kl_is_infinite_where_the_target_rules_out_a_possible_class():
    # p_1 = e^-10000 rounds to 0 in float32, but is not 0: KL(p || t) = inf
    x = jnp.array([[0.0, -1e4], [0.0, -jnp.inf]])
    t = jnp.array([[1.0, 0.0], [1.0, 0.0]])
    out = jaxloss.reverse_kl_divergence(x, t)
    assert out[0] == jnp.inf and out[1] == 0.0  # a -inf logit is an impossible class


def test_mean_of_huge_losses_does_not_overflow():
    x = jnp.full((7,), -1e38)  # each loss is 1e38; their sum overflows float32
    out = jaxloss.sigmoid_cross_entropy(x, jnp.ones(7), reduction="mean")
    np.testing.assert_allclose(out, 1e38, rtol=1e-6)
    ce = jaxloss.sparse_categorical_cross_entropy(
        jnp.tile(jnp.array([[2e38, -1e38]]), (4, 1)), jnp.ones(4, jnp.int32), reduction="mean"
    )
    np.testing.assert_allclose(ce, 3e38, rtol=1e-6)


def test_z_loss_of_a_huge_lse_does_not_overflow():
    # z lse**2 = 1e-4 (1e20)**2 = 1e36 is a float32; lse**2 alone (1e40) is not
    x = jnp.array([[-1e20, -1e20]], jnp.float32)
    y = jnp.array([0])
    want = 1e-4 * (-1e20 + math.log(2)) ** 2
    for got in (
        jaxloss.sparse_categorical_cross_entropy(x, y, z_loss=1e-4),
        jaxloss.categorical_cross_entropy(x, jnp.array([[1.0, 0.0]]), z_loss=1e-4),
        jaxloss.linear_cross_entropy(jnp.ones((1, 1)), x, y, z_loss=1e-4),
        jaxloss.sparse_categorical_cross_entropy(x, y, z_loss=1e-4, return_z_loss=True)[1],
    ):
        np.testing.assert_allclose(got, [want], rtol=1e-6)


@pytest.mark.parametrize(
    "row, dtype",
    [
        ([3000.0, 3000.0, 0.0], jnp.float32),
        ([1e6, 1e6, 0.0], jnp.float32),
        ([2.0**40, 2.0**40, 0.0], jnp.float32),
        ([-1e6, -1e6, -1e6 - 1], jnp.float32),
        ([2.0**49, 2.0**49, 0.0], jnp.float64),
    ],
)
@pytest.mark.parametrize("reduction", ["sum", "none"])
def test_linear_ties_at_large_logits(row, dtype, reduction):
    # two classes share the mass at a logit where lse = m + log 2 rounds: the fused
    # head's probabilities are exp((z - m) - log s), as the unfused loss's are
    with jax.enable_x64(dtype == jnp.float64):
        h, w, y = jnp.ones((1, 1), dtype), jnp.array([row], dtype), jnp.array([2])

        def fused(b):
            return jnp.sum(jaxloss.linear_cross_entropy(h, w, y, bias=b, reduction=reduction))

        got = jax.grad(fused)(jnp.zeros(3, dtype))
        want = jax.grad(lambda z: jnp.sum(jaxloss.sparse_categorical_cross_entropy(z, y)))(h @ w)[0]
    np.testing.assert_allclose(got, want, rtol=1e-6 if dtype == jnp.float32 else 1e-12)


@pytest.mark.parametrize("reduction", ["sum", "none"])
def test_linear_smoothing_with_zero_class_weight_on_a_neg_inf_class(reduction):
    # the class of weight 0 adds nothing to the smoothing term, even at a -inf logit
    h, w = jnp.ones((1, 1)), jnp.array([[0.0, -22.0, 0.0]])
    b, cw, y = jnp.array([0.0, 0.0, -jnp.inf]), jnp.array([2.0, 1.0, 0.0]), jnp.array([1])
    opts = dict(class_weights=cw, label_smoothing=0.1)

    def fused(h):
        return jnp.sum(jaxloss.linear_cross_entropy(h, w, y, bias=b, reduction=reduction, **opts))

    def unfused(h):
        return jnp.sum(jaxloss.sparse_categorical_cross_entropy(h @ w + b, y, **opts))

    np.testing.assert_allclose(fused(h), unfused(h), rtol=1e-6)
    np.testing.assert_allclose(jax.grad(fused)(h), jax.grad(unfused)(h), rtol=1e-6)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_linear_nan_class_weight_read_only_by_a_masked_token(reduction):
    # Class 3's weight is NaN and only a masked token has label 3. Without smoothing no
    # example reads it: the fused head's value and its hidden and weight gradients (and
    # jvp) are those of any valid weight there, and the class-weight gradient is NaN at
    # class 3 only, as the unfused loss's. The fused rules used to carry the NaN to
    # every token through 0 * NaN (the label weight of the masked token, and the unused
    # smoothing term), so dh and dW were all NaN. With smoothing every example reads
    # every class weight: all NaN, as unfused.
    rng = np.random.default_rng(0)
    h = jnp.asarray(rng.standard_normal((6, 4)), jnp.float32)
    w = jnp.asarray(rng.standard_normal((4, 5)), jnp.float32)
    y, keep = jnp.array([0, 1, 2, 3, 0, 1]), jnp.array([1, 1, 1, 0, 1, 1], bool)
    bad = jnp.array([1.0, 2.0, 1.0, jnp.nan, 1.0])

    def fused(h, w, cw, smoothing=0.0):
        loss = jaxloss.linear_cross_entropy(
            h, w, y, class_weights=cw, where=keep, reduction=reduction, label_smoothing=smoothing
        )
        return jnp.sum(loss)

    def unfused(h, w, cw):
        loss = jaxloss.sparse_categorical_cross_entropy(
            h @ w, y, class_weights=cw, where=keep, reduction=reduction
        )
        return jnp.sum(loss)

    value, grads = jax.value_and_grad(fused, (0, 1, 2))(h, w, bad)
    want_value, want_grads = jax.value_and_grad(fused, (0, 1, 2))(h, w, bad.at[3].set(5.0))
    np.testing.assert_allclose(value, want_value, rtol=1e-6)
    for got, want in zip(grads[:2], want_grads[:2]):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    unfused_cw = jax.grad(unfused, 2)(h, w, bad)
    assert np.isnan(grads[2][3]) and np.isnan(unfused_cw[3])
    np.testing.assert_allclose(np.delete(grads[2], 3), np.delete(unfused_cw, 3), rtol=1e-5)
    ones = jnp.ones_like(h)
    tangent = jax.jvp(lambda h: fused(h, w, bad), (h,), (ones,))[1]
    want_tangent = jax.jvp(lambda h: fused(h, w, bad.at[3].set(5.0)), (h,), (ones,))[1]
    np.testing.assert_allclose(tangent, want_tangent, rtol=1e-5)
    smoothed = jax.grad(fused, (0, 1))(h, w, bad, 0.1)
    assert all(np.isnan(np.asarray(g)[np.asarray(keep)]).all() for g in smoothed[:1])
    assert np.isnan(np.asarray(smoothed[1])).all()
    # no token at all has label 3: still NaN at the invalid weight (under jit XLA made
    # the one-hot product a select, which dropped it), as unfused
    y3 = jnp.array([0, 1, 2, 4, 0, 1])

    def read_by_none(cw, fn):
        return jnp.sum(fn(h @ w if fn is unfused_fn else h, y3, cw))

    def unfused_fn(x, y, cw):
        return jaxloss.sparse_categorical_cross_entropy(x, y, class_weights=cw, reduction=reduction)

    def fused_fn(h, y, cw):
        return jaxloss.linear_cross_entropy(h, w, y, class_weights=cw, reduction=reduction)

    got = jax.jit(jax.grad(read_by_none), static_argnums=1)(bad, fused_fn)
    want = jax.grad(read_by_none)(bad, unfused_fn)
    np.testing.assert_array_equal(np.isnan(got), [False, False, False, True, False])
    np.testing.assert_allclose(np.delete(got, 3), np.delete(want, 3), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("gamma", [0.0, 2.0])
def test_focal_target_and_alpha_gradients_at_a_neg_inf_logit(gamma):
    # The targets' and the class weights' derivatives take -log p_c as 0 at a -inf
    # logit, as the softmax cross-entropies do (docs/semantics.md); focal gave +inf.
    # Elsewhere they equal those of the row with the class dropped.
    x = jnp.array([0.0, -jnp.inf, 1.0, 2.0])
    t = jnp.array([0.5, 0.0, 0.25, 0.25])
    alpha = jnp.array([1.0, 2.0, 0.5, 1.0])
    keep = np.array([0, 2, 3])

    def focal(x, t, alpha):
        return jaxloss.categorical_focal_loss(x, t, gamma=gamma, alpha=alpha)

    g_t, g_a = jax.grad(focal, (1, 2))(x, t, alpha)
    d_t, d_a = jax.grad(focal, (1, 2))(x[keep], t[keep], alpha[keep])
    assert g_t[1] == 0 and g_a[1] == 0
    np.testing.assert_allclose(g_t[keep], d_t, rtol=1e-6)
    np.testing.assert_allclose(g_a[keep], d_a, rtol=1e-6)
    if gamma == 0:  # cross-entropy, whose rule already did this
        ce = jax.grad(jaxloss.categorical_cross_entropy, (1,))
        np.testing.assert_allclose(g_t, ce(x, t, class_weights=alpha)[0], rtol=1e-6)
    # integer labels, the label's logit -inf (an infinite loss): alpha's derivative
    # there is 0, as the sparse cross-entropy's class-weight derivative is
    y = jnp.array(1)
    g = jax.grad(lambda a: jaxloss.softmax_focal_loss(x, y, gamma=gamma, alpha=a))(alpha)
    np.testing.assert_array_equal(g, np.zeros(4))


@pytest.mark.parametrize("fn", [jaxloss.generalized_kl_divergence, jaxloss.convex_kl_divergence])
def test_generalized_kl_masked_class_gradient_is_dropping_it(fn):
    # a class that neither measure has (t = 0, log prediction -inf: a masked class)
    # adds nothing to the value and nothing to either gradient: its target derivative
    # was log(tiny) - (-inf) = +inf
    lp = jnp.log(jnp.array([0.5, 0.0, 0.3, 0.2]))
    t = jnp.array([0.4, 0.0, 0.35, 0.25])
    keep = np.array([0, 2, 3])
    grads = jax.grad(fn, (0, 1))(lp, t)
    dropped = jax.grad(fn, (0, 1))(lp[keep], t[keep])
    np.testing.assert_allclose(fn(lp, t), fn(lp[keep], t[keep]), rtol=1e-6)
    for got, want in zip(grads, dropped):
        assert got[1] == 0
        np.testing.assert_allclose(got[keep], want, rtol=1e-6)


@pytest.mark.parametrize("alpha", [None, 0.25])
def test_sigmoid_focal_label_gradient_at_agreeing_infinite_logits(alpha):
    # An infinite logit with the agreeing label (loss 0): for gamma > 0 the label's
    # derivative is the limit of the finite logits' one, 0 (it was NaN, from -x u**g =
    # inf * 0); for gamma = 0 it is sigmoid cross-entropy's, -x.
    x = jnp.array([-jnp.inf, jnp.inf, -1e4, 1e4])
    z = jnp.array([0.0, 1.0, 0.0, 1.0])
    for gamma in (0.0, 2.0):
        g = jax.grad(lambda z: jaxloss.sigmoid_focal_loss(x, z, gamma=gamma, alpha=alpha).sum())(z)
        if gamma:
            np.testing.assert_array_equal(g, np.zeros(4))
        else:
            scale = 1.0 if alpha is None else np.array([0.75, 0.25, 0.75, 0.25])
            want = jax.grad(lambda z: jaxloss.sigmoid_cross_entropy(x, z).sum())(z)
            np.testing.assert_array_equal(g, want * scale)


@pytest.mark.parametrize("bad", [jnp.nan, -1.0])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_categorical_focal_invalid_alpha_makes_every_gradient_nan(bad, smoothing):
    # Every example reads every alpha (a_c t_c is NaN for an invalid a_c even where t_c
    # is 0): the values are NaN, and so are the gradients of the logits, the targets
    # and alpha, in reverse and forward mode, as the cross-entropy's with the same class
    # weights. The targets' and alpha's gradients used to stay finite.
    x = jnp.array([[0.0, 0.5, 1.0, 2.0], [0.5, 1.0, -1.0, 0.0]])
    t = jnp.array([[0.5, 0.0, 0.25, 0.25], [0.1, 0.2, 0.3, 0.4]])
    alpha = jnp.array([1.0, bad, 0.5, 1.0])
    focal = functools.partial(jaxloss.categorical_focal_loss, label_smoothing=smoothing)
    ce = functools.partial(jaxloss.categorical_cross_entropy, label_smoothing=smoothing)
    for gamma in (0.0, 2.0):

        def f(x, t, alpha, gamma=gamma):
            return focal(x, t, gamma=gamma, alpha=alpha)

        assert np.isnan(f(x, t, alpha)).all()
        for g in jax.grad(lambda *a: f(*a).sum(), (0, 1, 2))(x, t, alpha):
            assert np.isnan(g).all()
        assert np.isnan(jax.jvp(lambda t: f(x, t, alpha), (t,), (jnp.ones_like(t),))[1]).all()
    for g in jax.grad(lambda *a: ce(a[0], a[1], class_weights=a[2]).sum(), (0, 1, 2))(x, t, alpha):
        assert np.isnan(g).all()


def test_sigmoid_class_weight_gradients_are_nan_where_their_input_is_invalid():
    # pos_weight's (and sigmoid focal alpha's) gradient is NaN at an invalid weight, as
    # the cross-entropy's class weights', and pos_weight's at a NaN logit's class even
    # where the label is 0 (that element's loss is NaN); both stayed finite
    x = jnp.array([[0.3, jnp.nan, 1.0], [jnp.inf, -jnp.inf, -0.5]])
    z = jnp.array([[1.0, 0.0, 0.0], [1.0, 0.0, 1.0]])
    q = jnp.array([2.0, 1.0, 0.5])

    def sce(x, q):
        return jaxloss.sigmoid_cross_entropy(x, z[: len(x)], pos_weight=q).sum()

    g = np.asarray(jax.grad(sce, 1)(x, q))
    np.testing.assert_array_equal(np.isnan(g), [False, True, False])
    g = jax.grad(sce, 1)(x[1:], q.at[2].set(jnp.nan))
    np.testing.assert_array_equal(np.isnan(g), [False, False, True])
    np.testing.assert_array_equal(g[:2], jax.grad(sce, 1)(x[1:], q)[:2])

    def focal(alpha):
        return jaxloss.sigmoid_focal_loss(x[1:], z[1:], alpha=alpha).sum()

    for bad in (jnp.nan, 1.5, -0.1):
        g = jax.grad(focal)(jnp.array([0.25, 0.5, bad]))
        np.testing.assert_array_equal(np.isnan(g), [False, False, True])


def test_zero_sample_weight_on_an_infinite_loss_is_zero_like_where():
    x = jnp.array([[3.4e38, -3.4e38], [0.0, 1.0]], jnp.float32)  # row 0: loss +inf
    y = jnp.array([1, 0])
    s = jnp.array([0.0, 2.0])
    f = jaxloss.sparse_categorical_cross_entropy
    np.testing.assert_array_equal(f(x, y, sample_weight=s)[0], 0.0)
    np.testing.assert_array_equal(f(x, y, sample_weight=s), f(x, y, where=s > 0) * s)
    assert np.isfinite(f(x, y, sample_weight=s, reduction="sum"))
    # the derivative in the weights is still the loss where it is finite
    ds = jax.grad(lambda s: f(x, y, sample_weight=s, reduction="sum"))(s)
    np.testing.assert_allclose(ds[1], f(x, y)[1], rtol=1e-6)
    # (the elementwise sigmoid losses keep the plain product: see _reduction._weighted)


@pytest.mark.parametrize("cap", [1e4, 1e10, 1e11, 1e15, 1e19])
@pytest.mark.parametrize("reduction", ["sum", "none"])
def test_linear_large_softcap_gradient(cap, reduction):
    # the capped logits are rounded once: a product c * t fused into exp(z - m) as a
    # multiply-add made the probabilities disagree with the statistics (c = 1e10:
    # 2e-26 for 1; some caps gave NaN)
    h, y = jnp.ones((1, 1)), jnp.array([0])
    w = jnp.array([[0.0, min(cap / 2, 5e9)]])

    def fused(w):
        return jnp.sum(
            jaxloss.linear_cross_entropy(h, w, y, logit_softcap=cap, reduction=reduction)
        )

    u = float(w[0, 1]) / cap
    np.testing.assert_allclose(jax.grad(fused)(w), [[-1.0, 1 / math.cosh(u) ** 2]], rtol=1e-6)


@pytest.mark.parametrize("dtype, big", [(jnp.float32, 2e38), (jnp.float64, 1e308)])
def test_reverse_kl_row_spanning_more_than_the_float_range(dtype, big):
    # log p is -inf for the finite logit -big: its p log p adds 0, not 0 * -inf = NaN
    with jax.enable_x64(dtype == jnp.float64):
        x = jnp.array([[-big, big]], dtype)
        t = jnp.array([[0.5, 0.5]], dtype)
        f = jaxloss.reverse_kl_divergence
        np.testing.assert_allclose(f(x, t), [math.log(2)], rtol=1e-6)
        np.testing.assert_array_equal(jax.grad(lambda x: f(x, t, reduction="sum"))(x), [[0, 0]])
        # and a target that rules out the possible class: +inf, not NaN
        assert f(jnp.array([[big, -big]], dtype), jnp.array([[0.0, 1.0]], dtype))[0] == jnp.inf


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16, jnp.float16, jnp.int32, jnp.bool_])
def test_target_check_is_exact_at_the_interval_ends(dtype):
    """The forward pass's target check (``_numerics.unit_excess``, from the row's min
    and max) accepts exactly ``[0, 1]``: the ends and 0/1 rows pass, the next float
    beyond either end, an integer 2 or -1, and NaN fail."""
    from jaxloss import _numerics

    ok_rows = [[0, 1, 0], [1, 1, 1], [0, 0, 0]]
    if jnp.issubdtype(dtype, jnp.floating):
        finfo = jnp.finfo(dtype)
        up = float(jnp.nextafter(jnp.array(1, dtype), jnp.array(2, dtype)))
        down = -float(finfo.smallest_normal)
        ok_rows += [[0.5, float(finfo.eps), 1 - float(finfo.epsneg)]]
        bad_rows = [[up, 0, 0], [down, 0.5, 0.5], [float("nan"), 0, 0], [0, float("inf"), 0]]
    elif dtype == jnp.bool_:
        bad_rows = []
    else:
        bad_rows = [[2, 0, 0], [-1, 1, 0]]
    t = jnp.array(ok_rows + bad_rows).astype(dtype)
    want = [True] * len(ok_rows) + [False] * len(bad_rows)
    np.testing.assert_array_equal(jax.jit(_numerics.unit_rows, static_argnums=1)(t, -1)[:, 0], want)
    poison = np.asarray(jax.jit(_numerics.unit_poison, static_argnums=1)(t, -1)[:, 0])
    np.testing.assert_array_equal(np.isnan(poison), np.logical_not(want))
    np.testing.assert_array_equal(poison[np.asarray(want)], 0)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16, jnp.float16])
def test_zero_times_inf_guard(dtype):
    """``_numerics.times``: a weight of 0 (or -0) times ``inf`` is 0, any positive
    weight (the smallest normal, 1, above 1) keeps ``inf``, NaN stays NaN, and finite
    values are the plain product; for weights converted from 16-bit types too."""
    from jaxloss import _numerics

    tiny = float(jnp.finfo(dtype).smallest_normal)
    w = jnp.array([0.0, -0.0, tiny, 0.5, 1.0, 3.0, float("nan"), 0.0, 0.25], dtype)
    v = jnp.array([np.inf] * 7 + [2.0, 2.0], jnp.float32)
    got = np.asarray(jax.jit(_numerics.times)(w.astype(jnp.float32), v))
    np.testing.assert_array_equal(got, [0, 0, np.inf, np.inf, np.inf, np.inf, np.nan, 0, 0.5])


def test_row_shift_of_non_finite_rows():
    """``_softmax.finite_shift``: the lowest float for a row of ``-inf``, the largest for
    a row holding ``+inf``, NaN kept, finite maxima unchanged; and the losses at such
    rows are those of a shift of 0 (``-inf`` rows NaN, ``+inf`` elsewhere than the
    label gives an infinite sparse loss)."""
    from jaxloss import _softmax

    big = float(jnp.finfo(jnp.float32).max)
    m = jnp.array([-jnp.inf, jnp.inf, jnp.nan, -big, big, 0.0, -3.5])
    got = np.asarray(jax.jit(_softmax.finite_shift)(m))
    np.testing.assert_array_equal(got, [-big, big, np.nan, -big, big, 0.0, -3.5])
    x = jnp.array([[-jnp.inf, -jnp.inf, -jnp.inf], [jnp.inf, 1.0, 0.0], [-jnp.inf, 2.0, 1.0]])
    y = jnp.array([0, 1, 0])
    loss = jaxloss.sparse_categorical_cross_entropy(x, y)
    np.testing.assert_array_equal(np.isnan(loss), [True, False, False])
    np.testing.assert_array_equal(loss[1:], [np.inf, np.inf])
    sparse = jaxloss.sparse_categorical_cross_entropy
    g = jax.grad(lambda x: sparse(x[2:], y[2:], reduction="sum"))(x)
    np.testing.assert_allclose(g[2], [-1.0, 0.7310586, 0.2689414], rtol=1e-6)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_kl_with_logits_student_rules_out_a_class_the_teacher_allows(dtype):
    """A -inf student logit where the teacher's logit is finite: the true q there is
    positive, so KL(q || p) is +inf, also where q underflows to 0 in float32
    (e**-400; found by the property fuzzer at 1,500 examples, seed 7). A class both
    rule out, or the teacher alone, adds 0."""
    x = jnp.array([[0.0, -jnp.inf], [0.0, 1.0], [0.0, -jnp.inf], [0.0, -jnp.inf]], dtype)
    y = jnp.array([[0.0, -200.0], [0.0, -jnp.inf], [0.0, -jnp.inf], [0.0, -5.0]], dtype)
    got = jaxloss.kl_divergence_with_logits(x, y, temperature=0.5)
    assert got[0] == np.inf and got[3] == np.inf
    np.testing.assert_allclose(got[1], math.log1p(math.exp(2.0)), rtol=1e-6)
    assert got[2] == 0
    masked = jaxloss.kl_divergence_with_logits(
        x, y, temperature=0.5, where=jnp.array([False, True, True, False]), reduction="sum"
    )
    np.testing.assert_allclose(masked, got[1], rtol=1e-6)


def test_kl_with_log_targets_prediction_rules_out_a_class_the_target_allows():
    """The optax drop-in follows kl_divergence_with_logits' rule: a finite log-target
    (positive mass, however it rounds) where the prediction is -inf gives +inf; a -inf
    log-target adds 0 (optax gives NaN for both)."""
    lp = jnp.array([[0.0, -jnp.inf]] * 3)
    lt = jnp.array([[0.0, -200.0], [0.0, -5.0], [0.0, -jnp.inf]])
    got = jaxloss.kl_divergence_with_log_targets(lp, lt)
    np.testing.assert_array_equal(got, [np.inf, np.inf, 0.0])
    for row in range(2):  # the same as the distillation loss on the same logits
        want = jaxloss.kl_divergence_with_logits(lp[row], lt[row])
        np.testing.assert_array_equal(got[row], want)


# A weighted mean does not change when every weight is scaled together: found by a
# fuzzer at weights far from 1. Its derivative in the weights' sum was -x / y**2, and
# y**2 left the float range (0, inf or NaN where -(x / y) / y is representable); the
# products s_i * w_i of sample and class weights of 1e-20 (or 1e20) each underflowed
# (overflowed) before the division.
_X = np.array([[0.5, -1.0, 2.0], [1.0, 0.0, -1.0], [0.3, 0.2, -2.0]], np.float32)
_WEIGHTED_MEANS = {
    "sparse": lambda s, cw: jaxloss.sparse_categorical_cross_entropy(
        _X, np.array([0, 2, 1]), sample_weight=s, class_weights=cw, reduction="mean"
    ),
    "soft": lambda s, cw: jaxloss.categorical_cross_entropy(
        _X, jax.nn.softmax(_X.T).T, sample_weight=s, class_weights=cw, reduction="mean"
    ),
    "kl": lambda s, cw: jaxloss.kl_divergence(
        _X, jax.nn.softmax(2 * _X), sample_weight=s, reduction="mean"
    ),
    "sigmoid": lambda s, cw: jaxloss.sigmoid_cross_entropy(
        _X, (_X > 0).astype(np.float32), sample_weight=s[:, None], reduction="mean"
    ),
    "linear": lambda s, cw: jaxloss.linear_cross_entropy(
        _X, _X.T, np.array([0, 2, 1]), sample_weight=s, class_weights=cw, reduction="mean"
    ),
}


@pytest.mark.parametrize("name", list(_WEIGHTED_MEANS))
def test_weighted_mean_and_its_gradients_do_not_depend_on_the_weights_scale(name):
    loss = _WEIGHTED_MEANS[name]
    s0, cw0 = np.array([1.0, 3.0, 0.5], np.float32), np.array([2.0, 1.0, 0.5], np.float32)
    value = jax.value_and_grad(loss, (0, 1))
    want, (ds, dcw) = value(s0, cw0)
    for scale in (1e-30, 1e-20, 1e20, 1e30):
        got, (gs, gcw) = value(s0 * np.float32(scale), cw0)
        np.testing.assert_allclose(got, want, rtol=1e-6, err_msg=f"value, s * {scale}")
        np.testing.assert_allclose(gs * scale, ds, rtol=1e-5, atol=1e-7, err_msg=f"s * {scale}")
        np.testing.assert_allclose(gcw, dcw, rtol=1e-5, atol=1e-7, err_msg=f"s * {scale}")
        got, (gs, gcw) = value(s0, cw0 * np.float32(scale))
        np.testing.assert_allclose(got, want, rtol=1e-6, err_msg=f"value, w * {scale}")
        np.testing.assert_allclose(gs, ds, rtol=1e-5, atol=1e-7, err_msg=f"w * {scale}")
        np.testing.assert_allclose(gcw * scale, dcw, rtol=1e-5, atol=1e-7, err_msg=f"w * {scale}")
        both = np.float32(scale)  # s_i * w_i = scale**2 leaves the float range
        got = loss(s0 * both, cw0 * both)
        np.testing.assert_allclose(got, want, rtol=1e-6, err_msg=f"value, s and w * {scale}")


def test_weighted_mean_rescaling_is_exact_and_keeps_invalid_weights_nan():
    """The sample weights are scaled by a power of two: integer weights still give
    exactly the mean of repeated examples; a negative or infinite weight is NaN, a
    masked one is ignored, and all-zero weights give 0 with a zero gradient."""
    y = np.array([0, 2, 1])
    per_example = jaxloss.sparse_categorical_cross_entropy(_X, y)
    mean = jaxloss.sparse_categorical_cross_entropy(
        _X, y, sample_weight=np.array([1.0, 3.0, 2.0], np.float32), reduction="mean"
    )
    repeated = jnp.mean(jnp.repeat(per_example, np.array([1, 3, 2]), total_repeat_length=6))
    np.testing.assert_allclose(mean, repeated, rtol=2e-7)

    def loss(s, where=None):
        return jaxloss.sparse_categorical_cross_entropy(
            _X, y, sample_weight=s, where=where, reduction="mean"
        )

    traced = jax.jit(loss)  # invalid values only known at run time (concrete: an error)
    for bad in (-1.0, np.inf, np.nan):
        s = np.array([1.0, bad, 1e30], np.float32)
        assert np.isnan(traced(s)), bad
        assert np.isnan(jax.jit(jax.grad(loss))(s)).all(), bad
        keep = np.array([True, False, True])  # the bad weight masked: ignored
        np.testing.assert_allclose(
            traced(s, keep), loss(np.array([1.0, 0.0, 1e30], np.float32)), rtol=1e-6
        )
    zero = np.zeros(3, np.float32)
    assert loss(zero) == 0 and (jax.grad(loss)(zero) == 0).all()


def test_weighted_mean_at_float64_scales():
    """float64 weights far outside float32's range (the rescaling's power of two is
    capped by the weights' own dtype), and float64 stays float64."""
    y = np.array([0, 2, 1])
    s, cw = np.array([1.0, 3.0, 0.5]), np.array([2.0, 1.0, 0.5])
    with jax.enable_x64(True):
        x = jnp.asarray(_X, jnp.float64)

        def mean(s, cw):
            return jaxloss.sparse_categorical_cross_entropy(
                x, y, sample_weight=s, class_weights=cw, reduction="mean"
            )

        want, (ds, _) = jax.value_and_grad(mean, (0, 1))(s, cw)
        for scale in (1e-200, 1e200):
            got, (gs, _) = jax.value_and_grad(mean, (0, 1))(s * scale, cw * scale)
            assert got.dtype == jnp.float64
            np.testing.assert_allclose(got, want, rtol=1e-14)
            np.testing.assert_allclose(gs * scale, ds, rtol=1e-12)


def test_checked_ignores_a_masked_sample_weight():
    """Under jaxloss.checked a negative sample weight raises only where it counts: a
    masked one is ignored, as it is without the checks."""
    y = np.array([0, 2, 1])
    keep = np.array([True, False, True])

    def loss(s):
        return jaxloss.sparse_categorical_cross_entropy(
            _X, y, sample_weight=s, where=keep, reduction="mean"
        )

    s = jnp.array([1.0, -1.0, 2.0])  # a JAX array: checked at run time
    want = loss(jnp.array([1.0, 0.0, 2.0]))
    np.testing.assert_allclose(jaxloss.checked(loss)(s), want, rtol=1e-6)
    with pytest.raises(Exception, match="sample_weight"):
        jaxloss.checked(loss)(jnp.array([-1.0, 1.0, 2.0]))


# XLA:CPU's YNNPACK fusions, used for arrays of about 4096 elements and more, do not
# propagate NaN through minimum, maximum and row maxima (HLO's semantics do). Every
# bad-value test above runs at a handful of classes, where XLA's own emitters keep NaN;
# these run the soft-target families at 8 x 1024, where the clamps used to turn a NaN
# into a finite bound or inf (categorical cross-entropy: inf for a NaN logit or a
# target of 1.5, and a finite target gradient for a NaN target).
_SOFT_AT_SCALE = {
    "categorical_cross_entropy": jaxloss.categorical_cross_entropy,
    "categorical smoothing z-loss": lambda x, t: jaxloss.categorical_cross_entropy(
        x, t, label_smoothing=0.1, z_loss=1e-3
    ),
    "kl_divergence": jaxloss.kl_divergence,
    "reverse_kl_divergence": jaxloss.reverse_kl_divergence,
    "js_divergence": jaxloss.js_divergence,
    "categorical_focal_loss": jaxloss.categorical_focal_loss,
    "poly_loss_cross_entropy": jaxloss.poly_loss_cross_entropy,
    "sigmoid_cross_entropy": jaxloss.sigmoid_cross_entropy,  # per element
    "binary_cross_entropy": lambda x, t: jaxloss.binary_cross_entropy(jax.nn.sigmoid(x), t),
    "info.kl_divergence": lambda x, t: jaxloss.info.kl_divergence(t, jax.nn.softmax(x)),
}


@pytest.mark.parametrize("name", list(_SOFT_AT_SCALE))
def test_invalid_values_are_nan_at_scale(name):
    f = _SOFT_AT_SCALE[name]
    n, c = 8, 1024
    rng = np.random.default_rng(0)
    x = 3 * rng.standard_normal((n, c)).astype(np.float32)
    t = rng.random((n, c)).astype(np.float32)
    t = t / t.sum(1, keepdims=True)
    t[0, ::2] = 0  # a zero-mass class beside each bad entry below
    clean = (x.copy(), t.copy())
    x[1, 5] = np.nan
    t[2, 3] = 1.5
    t[3, 0] = -0.1  # at a class of zero mass in row 0's pattern, positive here
    t[4, 7] = np.nan
    bad = np.zeros((n, c), bool)
    bad[[1, 2, 3, 4], [5, 3, 0, 7]] = True

    @jax.jit
    def run(x, t):
        return f(x, t), *jax.grad(lambda x, t: f(x, t).sum(), (0, 1))(x, t)

    got = [np.asarray(a) for a in run(x, t)]
    want = [np.asarray(a) for a in run(*clean)]
    if got[0].ndim == 1:  # a loss per row: the whole row of a bad entry
        bad = np.broadcast_to(bad.any(1, keepdims=True), bad.shape)
    for a, b in zip(got, want):  # the value, then the gradients
        where = bad[:, 0] if a.ndim == 1 else bad
        assert np.isnan(a[where]).all(), np.isnan(a[where]).mean()
        np.testing.assert_array_equal(a[~where], b[~where])  # the rest: untouched


def test_info_rejects_an_invalid_q_where_p_is_zero():
    """``info.kl_divergence`` and ``info.cross_entropy`` skipped ``q_c`` wherever
    ``p_c = 0``, so a ``q`` of -0.1 or NaN there gave a finite (even negative) value;
    now the value is NaN, and so is the whole row of both gradients."""
    info = jaxloss.info
    p = jnp.array([[0.5, 0.5, 0.0], [0.5, 0.5, 0.0]])
    q = jnp.array([[0.25, 0.25, 0.5], [0.5, 0.6, -0.1]])
    for f in (info.kl_divergence, info.cross_entropy, info.js_divergence):
        value = f(p, q)
        assert np.isfinite(value[0]) and np.isnan(value[1]), f.__name__
        for g in jax.grad(lambda p, q: f(p, q).sum(), (0, 1))(p, q):
            assert np.isfinite(g[0]).all() and np.isnan(g[1]).all(), f.__name__
    assert np.isnan(info.kl_divergence(p[0], jnp.array([0.5, 0.5, jnp.nan])))
    g = jax.grad(info.entropy)(jnp.array([0.5, 0.6, -0.1]))
    assert np.isnan(g).all()


def test_kl_with_log_targets_nan_log_prediction_gradient():
    """A NaN log-prediction makes the row's value NaN and now its whole gradient too
    (the derivative in ``lp`` is ``-e^lt``, which does not read ``lp``)."""
    lp = jnp.log(jnp.array([[0.2, 0.3, 0.5], [0.2, 0.3, 0.5]])).at[1, 0].set(jnp.nan)
    lt = jnp.log(jnp.array([[0.1, 0.6, 0.3], [0.1, 0.6, 0.3]]))
    f = jaxloss.kl_divergence_with_log_targets
    value = f(lp, lt)
    assert np.isfinite(value[0]) and np.isnan(value[1])
    for g in jax.grad(lambda a, b: f(a, b).sum(), (0, 1))(lp, lt):
        assert np.isfinite(g[0]).all() and np.isnan(g[1]).all()


@pytest.mark.parametrize(
    "f",
    [
        CE,
        functools.partial(CE, z_loss=1e-3),
        functools.partial(CE, class_weights=jnp.array([1.0, 2.0, 0.5])),
        jaxloss.kl_divergence,
    ],
)
def test_soft_target_rows_of_infinite_logits_are_nan_in_every_derivative(f):
    """Soft targets and forward KL shift by the plain row maximum (no finite clamp):
    a row holding ``+inf`` (and no ``-inf``) is NaN in value and in every entry of both
    gradients, in reverse and forward mode (before, the clamp left the other classes a logit
    gradient of 0 and a target gradient of ``+inf`` under a NaN value); a row made
    only of ``-inf`` is NaN in value and logit gradient, as before. Rows with
    some ``-inf`` stay finite, a masked bad row gives exactly 0, and the other rows
    are those of the batch without the bad ones."""
    inf = jnp.inf
    x = jnp.array(
        [[1.0, 0.5, -1.0], [0.0, inf, 1.0], [-inf, -inf, -inf], [-inf, 0.0, 1.0]], jnp.float32
    )
    t = jnp.array([[0.2, 0.3, 0.5], [0.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.5, 0.5]])
    bad = np.array([False, True, True, False])

    def grads(x, t, where=None):
        return jax.grad(lambda x, t: f(x, t, where=where, reduction="sum"), (0, 1))(x, t)

    value = np.asarray(f(x, t))
    assert np.isnan(value[bad]).all() and np.isfinite(value[~bad]).all()
    clean = [np.asarray(a) for a in grads(x[~bad], t[~bad])]
    gx, gt = (np.asarray(g) for g in grads(x, t))
    assert np.isnan(gx[bad]).all() and np.isnan(gt[1]).all()
    assert (gt[2] == 0).all()  # -log p taken as 0 at a -inf logit (docs/semantics.md)
    for g, c in zip((gx, gt), clean):
        np.testing.assert_allclose(g[~bad], c, rtol=1e-6)
    tangent = jax.jvp(lambda x: f(x, t), (x,), (jnp.ones_like(x),))[1]
    assert np.isnan(np.asarray(tangent)[bad]).all() and np.isfinite(tangent[~bad]).all()
    per_example = jax.vmap(jax.grad(lambda x, t: f(x[None], t[None]).sum()))(x, t)
    assert np.isnan(np.asarray(per_example)[bad]).all()
    np.testing.assert_allclose(np.asarray(per_example)[~bad], clean[0], rtol=1e-6)
    for g in grads(x, t, where=jnp.asarray(~bad)):  # masked: exactly 0
        assert (np.asarray(g)[bad] == 0).all()
