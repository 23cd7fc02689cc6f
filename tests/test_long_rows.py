"""The long-rows view of XLA:CPU (jaxloss/_long_rows.py): a row of classes split into
several rows gives the one-row computation's values and derivatives, for every loss
that uses it. The split is forced at small shapes by lowering ``MAX_ROW``."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxloss
from jaxloss import _cross_entropy, _long_rows

C = 12  # split into 3 rows of 4 below


@pytest.fixture
def short_rows(monkeypatch):
    monkeypatch.setattr(_long_rows, "MAX_ROW", 4)
    monkeypatch.setattr(_long_rows, "MIN_ROW", 2)


def test_parts_for():
    assert _long_rows.parts_for(50257) == 29  # GPT-2: rows of 1733
    assert _long_rows.parts_for(128256) == 4  # Llama 3: rows of 32064
    assert _long_rows.parts_for(256000) == 8
    assert _long_rows.parts_for(32768) == 1  # short enough
    assert _long_rows.parts_for(50261) == 1  # a prime: no split


def test_when_it_splits(short_rows):
    x = jnp.zeros((2, C))
    y = jnp.zeros((2,), jnp.int32)
    kernel = _cross_entropy.CrossEntropy(fn="f", axis=1, sparse=True)
    assert isinstance(_long_rows.maybe_split(kernel, (x, y, None)), _long_rows.SplitRows)
    # per-class arrays would need a copy of the view's shape; the class axis must be last
    assert _long_rows.maybe_split(kernel, (x, y, jnp.ones(C))) is kernel
    kernel0 = _cross_entropy.CrossEntropy(fn="f", axis=0, sparse=True)
    assert _long_rows.maybe_split(kernel0, (x.T, y, None)) is kernel0
    # measured slower for 16-bit logits with integer labels (docs/performance.md)
    bf16 = x.astype(jnp.bfloat16)
    assert _long_rows.maybe_split(kernel, (bf16, y, None)) is kernel
    soft = _cross_entropy.CrossEntropy(fn="f", axis=1, sparse=False)
    assert isinstance(_long_rows.maybe_split(soft, (bf16, bf16, None)), _long_rows.SplitRows)


def test_not_with_several_devices(short_rows, monkeypatch):
    # the logits may be sharded along the classes, which a trace cannot see
    monkeypatch.setattr(jax, "device_count", lambda: 8)
    x = jnp.zeros((2, C))
    kernel = _cross_entropy.CrossEntropy(fn="f", axis=1, sparse=False)
    assert _long_rows.maybe_split(kernel, (x, x, None)) is kernel


def _inputs():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, C)) * 3
    x[0, 1, 5] = -np.inf  # a masked class: no target mass below
    x[1, 2] = np.nan  # a masked example
    t = rng.dirichlet(np.ones(C), (2, 3))
    t[0, 1, 5] = 0.0
    t[1, 2] = np.nan
    y = rng.integers(0, C, (2, 3))
    y[0, 1] = 7
    y[0, 2] = C  # out of range: NaN
    where = np.ones((2, 3), bool)
    where[1, 2] = False
    teacher = np.log(rng.dirichlet(np.ones(C), (2, 3)))
    return jnp.asarray(x), jnp.asarray(t), jnp.asarray(y), jnp.asarray(where), teacher


X, T, Y, WHERE, TEACHER = _inputs()
W = {"where": WHERE}
CASES = {
    "sparse": lambda x, t, **k: jaxloss.sparse_categorical_cross_entropy(
        x, Y, label_smoothing=0.1, z_loss=0.01, **W, **k
    ),
    "sparse_ignore": lambda x, t, **k: jaxloss.sparse_categorical_cross_entropy(
        x, Y, ignore_index=7, **W, **k
    ),
    "categorical": lambda x, t, **k: jaxloss.categorical_cross_entropy(
        x, t, label_smoothing=0.2, z_loss=0.01, **W, **k
    ),
    "kl": lambda x, t, **k: jaxloss.kl_divergence(x, t, **W, **k),
    "reverse_kl": lambda x, t, **k: jaxloss.reverse_kl_divergence(x, t, **W, **k),
    "kl_with_logits": lambda x, t, **k: jaxloss.kl_divergence_with_logits(
        x, jnp.asarray(TEACHER), temperature=2.0, **W, **k
    ),
    "js": lambda x, t, **k: jaxloss.js_divergence(x, t, **W, **k),
    "entropy": lambda x, t, **k: jaxloss.entropy(x, **W, **k),
    "softmax_focal": lambda x, t, **k: jaxloss.softmax_focal_loss(x, Y, **W, **k),
    "softmax_focal_smoothing": lambda x, t, **k: jaxloss.softmax_focal_loss(
        x, Y, label_smoothing=0.1, **W, **k
    ),
    "categorical_focal": lambda x, t, **k: jaxloss.categorical_focal_loss(x, t, **W, **k),
}


def _everything(f):
    """Per-example values, the mean's gradients and a Hessian-vector product, in one
    compiled program."""

    def mean(x, t):
        v = f(x, t, reduction="none")
        return jnp.sum(jnp.where(jnp.isfinite(v), v, 0.0))

    def run(x, t):
        grads = jax.grad(mean, argnums=(0, 1))(x, t)
        hvp = jax.jvp(lambda x: jax.grad(mean)(x, t), (x,), (jnp.cos(jnp.nan_to_num(x)),))[1]
        return f(x, t, reduction="none"), f(x, t, reduction="mean"), grads, hvp

    return jax.jit(run)


@pytest.mark.parametrize("name", CASES)
def test_split_equals_one_row(name, monkeypatch):
    with jax.enable_x64(True):
        x, t = X.astype(jnp.float64), T.astype(jnp.float64)
        want = _everything(CASES[name])(x, t)
        monkeypatch.setattr(_long_rows, "MAX_ROW", 4)
        monkeypatch.setattr(_long_rows, "MIN_ROW", 2)
        got = _everything(CASES[name])(x, t)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_vmap_of_per_example_gradients(short_rows):
    # under vmap the kernel sees one example: a [C] row split into 3
    def one(x, y):
        return jaxloss.sparse_categorical_cross_entropy(x, y, label_smoothing=0.1)

    x = jnp.nan_to_num(X[0], neginf=-1.0).astype(jnp.float32)
    got = jax.vmap(jax.grad(one))(x, Y[0] % C)
    want = jax.nn.softmax(x) * 1.0 - (0.9 * jax.nn.one_hot(Y[0] % C, C) + 0.1 / C)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("loss", ["categorical", "kl"])
def test_16_bit_view_is_not_copied(short_rows, monkeypatch, loss):
    # The view must reach the kernel as a bitcast: XLA:CPU used to write a float32 copy
    # of each 16-bit array of the view (and a 16-bit copy of the targets), 2.5 times
    # the float32 logits, where one float32 copy of the logits is all it needs.
    monkeypatch.setattr(_long_rows, "MAX_ROW", 1024)
    monkeypatch.setattr(_long_rows, "MIN_ROW", 512)
    n, c = 16, 4096  # split into 4 rows of 1024
    x = jnp.zeros((n, c), jnp.bfloat16)
    f = getattr(jaxloss, {"categorical": "categorical_cross_entropy", "kl": "kl_divergence"}[loss])
    kernel = _cross_entropy.CrossEntropy(fn="f", axis=1, sparse=False)  # the shape splits
    assert isinstance(_long_rows.maybe_split(kernel, (x, x, None)), _long_rows.SplitRows)
    compiled = jax.jit(lambda x, t: f(x, t, reduction="mean")).lower(x, x).compile()
    temp = compiled.memory_analysis().temp_size_in_bytes
    assert temp <= 4 * n * c + 64 * n, temp


@pytest.mark.parametrize("name", ["categorical", "kl", "sparse"])
def test_reverse_mode_keeps_the_arrays_not_the_view(short_rows, name):
    # The rule makes the view itself, so reverse mode keeps the arrays as given (free:
    # they are the arguments) and, with residuals="lse", nothing else logits-sized: a
    # forward/backward split across jit boundaries would otherwise store reshaped copies.
    import contextlib
    import io

    from jax.ad_checkpoint import print_saved_residuals

    x = jnp.asarray(np.nan_to_num(np.asarray(X[0]), neginf=-1.0, nan=0.0))
    t = jnp.full(x.shape, 1.0 / C)
    y = jnp.asarray(np.asarray(Y[0]) % C)
    f = {
        "categorical": lambda x: jaxloss.categorical_cross_entropy(x, t, residuals="lse"),
        "kl": lambda x: jaxloss.kl_divergence(x, t, residuals="lse"),
        "sparse": lambda x: jaxloss.sparse_categorical_cross_entropy(x, y, residuals="lse"),
    }[name]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        print_saved_residuals(lambda x: jnp.sum(f(x)), x)
    given = ("from the argument", "from a constant")  # x, and t or y
    kept = [r for r in out.getvalue().splitlines() if not r.split(" ", 1)[1].startswith(given)]
    sizes = [int(np.prod([int(d) for d in r.split("[")[1].split("]")[0].split(",") if d]))
             for r in kept]  # fmt: skip
    assert kept and max(sizes) <= 3 * 3, kept  # per row of the view (3 examples x 3 rows)
