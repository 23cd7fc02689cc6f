"""The benchmark suite: every loss against optax and plain autodiff, and the device's limits.

    python benchmarks/run.py            # reference shapes (BENCHMARKS.md), minutes
    python benchmarks/run.py --quick    # tiny shapes, seconds (CI runs this)

For each case (a loss, a dtype, forward or forward+backward of the mean loss) it checks
jaxloss against a float64 NumPy reference, times jaxloss, optax's equivalent and the
plain ``jax.numpy`` formula differentiated by autodiff, interleaved in one process, and
reports the medians, the ratios, the compiled temporary memory, the bytes kept across a
forward/backward split, and the achieved bandwidth as a fraction of the copy bandwidth
measured in the same run. Results go to ``benchmarks/results/<device>[-quick].json``
and ``.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import timing  # noqa: E402

import jaxloss  # noqa: E402


@dataclasses.dataclass
class Case:
    """One loss at one size: how to make inputs, and the three implementations."""

    name: str
    make: Callable[[jax.Array, int, int, Any], tuple]  # key, n, c, dtype -> inputs
    ours: Callable[..., jax.Array]  # per-example losses
    optax: Callable[..., jax.Array] | None
    plain: Callable[..., jax.Array]
    reference: Callable[..., np.ndarray]  # float64 NumPy, per-example
    fwd_passes: int  # logits-sized arrays read by the forward (the byte floor)
    fwd_bwd_passes: int  # ... read and written by forward + backward


def _logits(key, n, c, dtype):
    return (3.0 * jax.random.normal(key, (n, c), jnp.float32)).astype(dtype)


def _np_log_softmax(x):
    x = np.asarray(x, np.float64)
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


def _make_sparse(key, n, c, dtype):
    k1, k2 = jax.random.split(key)
    return _logits(k1, n, c, dtype), jax.random.randint(k2, (n,), 0, c)


def _make_soft(key, n, c, dtype):
    k1, k2 = jax.random.split(key)
    targets = jax.nn.softmax(jax.random.normal(k2, (n, c), jnp.float32)).astype(dtype)
    return _logits(k1, n, c, dtype), targets


def _plain_sparse(x, y):
    x = x.astype(jnp.float32)
    return jax.nn.logsumexp(x, -1) - jnp.take_along_axis(x, y[:, None], -1)[:, 0]


def _plain_soft(x, t):
    return -jnp.sum(t.astype(jnp.float32) * jax.nn.log_softmax(x.astype(jnp.float32)), -1)


def _make_binary(key, n, c, dtype):
    k1, k2 = jax.random.split(key)
    labels = (jax.random.uniform(k2, (n, c)) < 0.1).astype(dtype)
    return _logits(k1, n, c, dtype), labels


def _plain_sigmoid(x, z):
    x, z = x.astype(jnp.float32), z.astype(jnp.float32)
    return -(z * jax.nn.log_sigmoid(x) + (1 - z) * jax.nn.log_sigmoid(-x))


def _np_sigmoid(x, z):
    x, z = np.asarray(x, np.float64), np.asarray(z, np.float64)
    return z * np.logaddexp(0, -x) + (1 - z) * np.logaddexp(0, x)


def _plain_kl(x, t):
    t = t.astype(jnp.float32)
    log_t = jnp.log(jnp.where(t > 0, t, 1))
    return jnp.sum(t * (log_t - jax.nn.log_softmax(x.astype(jnp.float32))), -1)


def _np_kl(x, t):
    t = np.asarray(t, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sum(np.where(t > 0, t * (np.log(t) - _np_log_softmax(x)), 0), -1)


CASES = [
    Case(
        name="sparse_categorical_cross_entropy",
        make=_make_sparse,
        ours=jaxloss.sparse_categorical_cross_entropy,
        optax=optax.softmax_cross_entropy_with_integer_labels,
        plain=_plain_sparse,
        reference=lambda x, y: -np.take_along_axis(_np_log_softmax(x), y[:, None], -1)[:, 0],
        fwd_passes=1,
        fwd_bwd_passes=3,
    ),
    Case(
        name="categorical_cross_entropy",
        make=_make_soft,
        ours=jaxloss.categorical_cross_entropy,
        optax=optax.softmax_cross_entropy,
        plain=_plain_soft,
        reference=lambda x, t: -(np.asarray(t, np.float64) * _np_log_softmax(x)).sum(-1),
        fwd_passes=2,  # logits and targets
        fwd_bwd_passes=5,  # both read twice, the gradient written once
    ),
    Case(
        name="sigmoid_cross_entropy",
        make=_make_binary,
        ours=jaxloss.sigmoid_cross_entropy,
        optax=optax.sigmoid_binary_cross_entropy,
        plain=_plain_sigmoid,
        reference=_np_sigmoid,
        fwd_passes=2,
        fwd_bwd_passes=5,
    ),
    Case(
        name="kl_divergence",
        make=_make_soft,
        ours=jaxloss.kl_divergence,
        optax=lambda x, t: optax.kl_divergence(jax.nn.log_softmax(x), t),
        plain=_plain_kl,
        reference=_np_kl,
        fwd_passes=2,
        fwd_bwd_passes=5,
    ),
]


def _host(a):
    """A NumPy copy, with 16-bit floats widened (NumPy has no bfloat16 arithmetic)."""
    return np.asarray(a.astype(jnp.float32) if jnp.issubdtype(a.dtype, jnp.floating) else a)


def _mean_of(f):
    return lambda x, *rest: jnp.mean(f(x, *rest))


def _grad_of(f):
    return jax.value_and_grad(_mean_of(f))


def run_case(case: Case, n: int, c: int, dtype, mode: str, copy_bw: float, repeats: int):
    key = jax.random.key(hash((case.name, n, c)) % 2**31)
    inputs = case.make(key, n, c, dtype)
    wrap = _mean_of if mode == "fwd" else _grad_of
    impls = {"jaxloss": case.ours, "optax": case.optax, "autodiff": case.plain}
    fns = {k: jax.jit(wrap(f)) for k, f in impls.items() if f is not None}

    # Correctness first: the mean loss against the float64 reference, and the
    # gradient against the other implementations.
    outs = {k: jax.block_until_ready(f(*inputs)) for k, f in fns.items()}
    rows = min(n, 256)
    ref_rows = case.reference(*(_host(a[:rows]) for a in inputs))
    ours_rows = np.asarray(case.ours(*(a[:rows] for a in inputs)), np.float64)
    tol = 1e-4 if jnp.dtype(dtype) == jnp.float32 else 1e-3
    value_err = float(np.max(np.abs(ours_rows - ref_rows)) / max(1.0, np.abs(ref_rows).max()))
    assert value_err < tol, f"{case.name}: value error {value_err} against the reference"
    grad_err = None
    if mode == "fwd+bwd":
        g_ours = np.asarray(outs["jaxloss"][1], np.float32)
        g_other = np.asarray(outs["autodiff"][1], np.float32)
        grad_err = float(np.max(np.abs(g_ours - g_other)) / max(1e-30, np.abs(g_other).max()))
        assert grad_err < 10 * tol, f"{case.name}: gradient differs from autodiff by {grad_err}"

    medians = timing.interleaved_medians(fns, inputs, repeats=repeats)
    itemsize = jnp.dtype(dtype).itemsize
    passes = case.fwd_passes if mode == "fwd" else case.fwd_bwd_passes
    floor_bytes = passes * n * c * itemsize
    result = {
        "loss": case.name,
        "n": n,
        "c": c,
        "dtype": jnp.dtype(dtype).name,
        "mode": mode,
        "value_error": value_err,
        "grad_error": grad_err,
        "median_s": medians,
        "ratio_vs_optax": medians["jaxloss"] / medians["optax"] if "optax" in medians else None,
        "ratio_vs_autodiff": medians["jaxloss"] / medians["autodiff"],
        "floor_bytes": floor_bytes,
        "bandwidth_fraction": floor_bytes / medians["jaxloss"] / copy_bw,
        "temp_bytes": {k: timing.temp_bytes(f, *inputs) for k, f in fns.items()},
    }
    if mode == "fwd+bwd":
        result["residual_bytes"] = {
            k: timing.residual_bytes(_mean_of(f), *inputs)[0] for k, f in impls.items() if f
        }
    return result


def _fmt_bytes(b):
    if b is None:
        return "n/a"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(b) < 1024:
            return f"{b:.0f} {unit}" if unit == "B" else f"{b:.1f} {unit}"
        b /= 1024
    return f"{b:.1f} TiB"


def markdown(report: dict) -> str:
    env = report["environment"]
    lines = [
        f"### {env['device']} ({env['backend']}), jax {env['jax']}, optax {env['optax']}",
        "",
        f"Measured {env['date']}: copy bandwidth {env['copy_bandwidth_gbs']:.1f} GB/s "
        f"(bytes read + written), matmul {env['matmul_gflops']:.0f} GFLOP/s (float32). "
        "Times are medians of interleaved runs; ratio < 1 means jaxloss is faster. "
        "Roofline = (byte floor / time) / copy bandwidth. Temp = compiled temporary "
        "memory; residuals = bytes kept between forward and backward beyond the inputs.",
        "",
        "| loss | N x C | dtype | mode | jaxloss | optax | autodiff | vs optax "
        "| vs autodiff | roofline | temp (jaxloss / optax) | residuals (jaxloss / optax) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["results"]:
        m = r["median_s"]
        res = r.get("residual_bytes", {})
        lines.append(
            f"| {r['loss']} | {r['n']} x {r['c']} | {r['dtype']} | {r['mode']} "
            f"| {m['jaxloss'] * 1e3:.1f} ms | "
            + (f"{m['optax'] * 1e3:.1f} ms" if "optax" in m else "n/a")
            + f" | {m['autodiff'] * 1e3:.1f} ms | "
            + (f"{r['ratio_vs_optax']:.2f}x" if r["ratio_vs_optax"] else "n/a")
            + f" | {r['ratio_vs_autodiff']:.2f}x | {100 * r['bandwidth_fraction']:.0f}% "
            f"| {_fmt_bytes(r['temp_bytes'].get('jaxloss'))} / "
            f"{_fmt_bytes(r['temp_bytes'].get('optax'))} | "
            + (f"{_fmt_bytes(res.get('jaxloss'))} / {_fmt_bytes(res.get('optax'))}" if res else "-")
            + " |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny shapes, for CI")
    parser.add_argument("--n", type=int, help="examples (default: BENCHMARKS.md's)")
    parser.add_argument("--c", type=int, help="classes")
    parser.add_argument("--dtypes", default="float32,bfloat16")
    parser.add_argument("--modes", default="fwd,fwd+bwd")
    parser.add_argument("--cases", default="", help="comma-separated substrings of loss names")
    parser.add_argument("--repeats", type=int)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    args = parser.parse_args(argv)

    backend = jax.default_backend()
    if args.quick:
        n, c, repeats = 64, 512, 3
    elif backend == "cpu":
        n, c, repeats = 4096, 32768, 9
    else:
        n, c, repeats = 16384, 131072, 25
    n, c = args.n or n, args.c or c
    repeats = args.repeats or repeats
    device = jax.devices()[0]
    copy_bw = timing.copy_bandwidth(1 << 24 if args.quick else 1 << 29)
    flops = timing.matmul_flops(256 if args.quick else 2048)
    env = {
        "device": getattr(device, "device_kind", str(device)),
        "backend": backend,
        "jax": jax.__version__,
        "jaxlib": jax.lib.__version__ if hasattr(jax.lib, "__version__") else "",
        "optax": optax.__version__,
        "jaxloss": jaxloss.__version__,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "date": time.strftime("%Y-%m-%d"),
        "copy_bandwidth_gbs": copy_bw / 1e9,
        "matmul_gflops": flops / 1e9,
        "quick": args.quick,
    }
    print(
        f"{env['device']}: copy {env['copy_bandwidth_gbs']:.1f} GB/s, "
        f"matmul {env['matmul_gflops']:.0f} GFLOP/s",
        flush=True,
    )
    wanted = [s for s in args.cases.split(",") if s]
    results = []
    for case in CASES:
        if wanted and not any(w in case.name for w in wanted):
            continue
        for dtype in args.dtypes.split(","):
            for mode in args.modes.split(","):
                r = run_case(case, n, c, jnp.dtype(dtype), mode, copy_bw, repeats)
                m = r["median_s"]
                print(
                    f"{case.name:34s} {r['dtype']:8s} {mode:7s} ours {m['jaxloss'] * 1e3:8.1f} ms"
                    + (
                        f"  optax {m['optax'] * 1e3:8.1f} ms  ratio {r['ratio_vs_optax']:.2f}"
                        if "optax" in m
                        else ""
                    )
                    + f"  roofline {100 * r['bandwidth_fraction']:.0f}%",
                    flush=True,
                )
                results.append(r)
    report = {"environment": env, "results": results}
    os.makedirs(args.out, exist_ok=True)
    stem = os.path.join(args.out, backend + ("-quick" if args.quick else ""))
    with open(stem + ".json", "w") as f:
        json.dump(report, f, indent=1)
    with open(stem + ".md", "w") as f:
        f.write(markdown(report))
    print(f"wrote {stem}.json and {stem}.md")
    return report


if __name__ == "__main__":
    main()
