"""The benchmark grid: every softmax-family and sigmoid loss against optax and plain
autodiff, over the shapes users run, with the device's limits measured alongside.

    python benchmarks/run.py            # the whole grid (docs/benchmarks.md), ~25 min, 2 cores
    python benchmarks/run.py --quick    # tiny shapes, seconds (CI runs this)
    python benchmarks/run.py --losses sparse --shapes 1024x1000 --dtypes float32

Each cell (a loss, a shape N x C, a dtype, forward or forward+backward of the mean
loss) first checks jaxloss against a float64 NumPy reference, then compiles jaxloss,
optax's equivalent and the plain ``jax.numpy`` formula differentiated by autodiff
(timing the compilation), and times the three interleaved in one process. It reports
the medians and ratios, compiled temporary memory, the bytes reverse mode keeps
across a forward/backward split, and at the large shapes the bandwidth reached
against the byte floor as a fraction of the copy bandwidth measured in the same run.
Two more tables: per-example gradients under ``vmap``, and a training step whose
logits come from ``h @ W`` inside the loss. Results go to
``benchmarks/results/<backend>[-quick].json`` and ``.md`` (``gpu-<device>`` on GPUs).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import re
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

GRID_SHAPES = [
    (128, 10),
    (1024, 1000),
    (8192, 1000),
    (256, 50257),
    (2048, 8192),
    (64, 128256),
    (2048, 32768),
    (4096, 32768),
]
QUICK_SHAPES = [(16, 10)]
LARGE = 2**26  # logits at least this large get a roofline figure (past every cache)


@dataclasses.dataclass
class Case:
    """One loss: how to make inputs, the three implementations, and the reference."""

    name: str
    make: Callable[[jax.Array, int, int, Any], tuple]  # key, n, c, dtype -> inputs
    ours: Callable[..., jax.Array]  # per-example (or per-element) losses
    optax: Callable[..., jax.Array]
    plain: Callable[..., jax.Array]
    reference: Callable[..., np.ndarray]  # float64 NumPy, per example
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


def _make_binary(key, n, c, dtype):
    k1, k2 = jax.random.split(key)
    labels = (jax.random.uniform(k2, (n, c)) < 0.1).astype(dtype)
    return _logits(k1, n, c, dtype), labels


def _plain_sparse(x, y):
    x = x.astype(jnp.float32)
    return jax.nn.logsumexp(x, -1) - jnp.take_along_axis(x, y[..., None], -1)[..., 0]


def _plain_soft(x, t):
    return -jnp.sum(t.astype(jnp.float32) * jax.nn.log_softmax(x.astype(jnp.float32)), -1)


def _plain_sigmoid(x, z):
    x, z = x.astype(jnp.float32), z.astype(jnp.float32)
    return -(z * jax.nn.log_sigmoid(x) + (1 - z) * jax.nn.log_sigmoid(-x))


def _plain_kl(x, t):
    t = t.astype(jnp.float32)
    log_t = jnp.log(jnp.where(t > 0, t, 1))
    return jnp.sum(t * (log_t - jax.nn.log_softmax(x.astype(jnp.float32))), -1)


def _np_sigmoid(x, z):
    x, z = np.asarray(x, np.float64), np.asarray(z, np.float64)
    return z * np.logaddexp(0, -x) + (1 - z) * np.logaddexp(0, x)


def _np_kl(x, t):
    t = np.asarray(t, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sum(np.where(t > 0, t * (np.log(t) - _np_log_softmax(x)), 0), -1)


CASES = {
    "sparse": Case(
        name="sparse_categorical_cross_entropy",
        make=_make_sparse,
        ours=jaxloss.sparse_categorical_cross_entropy,
        optax=optax.softmax_cross_entropy_with_integer_labels,
        plain=_plain_sparse,
        reference=lambda x, y: -np.take_along_axis(_np_log_softmax(x), y[:, None], -1)[:, 0],
        fwd_passes=1,
        fwd_bwd_passes=3,
    ),
    "soft": Case(
        name="categorical_cross_entropy",
        make=_make_soft,
        ours=jaxloss.categorical_cross_entropy,
        optax=optax.softmax_cross_entropy,
        plain=_plain_soft,
        reference=lambda x, t: -(np.asarray(t, np.float64) * _np_log_softmax(x)).sum(-1),
        fwd_passes=2,  # logits and targets
        fwd_bwd_passes=5,  # both read twice, the gradient written once
    ),
    "sigmoid": Case(
        name="sigmoid_cross_entropy",
        make=_make_binary,
        ours=jaxloss.sigmoid_cross_entropy,
        optax=optax.sigmoid_binary_cross_entropy,
        plain=_plain_sigmoid,
        reference=_np_sigmoid,
        fwd_passes=2,
        fwd_bwd_passes=5,
    ),
    "kl": Case(
        name="kl_divergence",
        make=_make_soft,
        ours=jaxloss.kl_divergence,
        optax=lambda x, t: optax.kl_divergence(jax.nn.log_softmax(x), t),
        plain=_plain_kl,
        reference=_np_kl,
        fwd_passes=2,
        fwd_bwd_passes=5,
    ),
}


def _host(a):
    """A NumPy copy, with 16-bit floats widened (NumPy has no bfloat16 arithmetic)."""
    return np.asarray(a.astype(jnp.float32) if jnp.issubdtype(a.dtype, jnp.floating) else a)


def _mean_of(f):
    return lambda x, *rest: jnp.mean(f(x, *rest))


def _grad_of(f):
    return jax.value_and_grad(_mean_of(f))


def _check(case: Case, inputs, mode, fns_out):
    """Values against the float64 reference; gradients against autodiff."""
    rows = min(inputs[0].shape[0], 64)
    want = case.reference(*(_host(a[:rows]) for a in inputs))
    got = np.asarray(case.ours(*(a[:rows] for a in inputs)), np.float64)
    want = want.reshape(got.shape)
    tol = 1e-4 if inputs[0].dtype == jnp.float32 else 1e-3
    err = float(np.max(np.abs(got - want)) / max(1.0, np.abs(want).max()))
    assert err < tol, f"{case.name}: value error {err} against the float64 reference"
    if mode == "fwd":
        return err, None
    g_ours = np.asarray(fns_out["jaxloss"][1], np.float32)
    g_other = np.asarray(fns_out["autodiff"][1], np.float32)
    gerr = float(np.max(np.abs(g_ours - g_other)) / max(1e-30, np.abs(g_other).max()))
    assert gerr < 10 * tol, f"{case.name}: gradient differs from autodiff by {gerr}"
    return err, gerr


def run_cell(case: Case, n, c, dtype, mode, copy_bw, args) -> dict:
    key = jax.random.key(hash((case.name, n, c)) % 2**31)
    inputs = case.make(key, n, c, dtype)
    wrap = _mean_of if mode == "fwd" else _grad_of
    impls = {"jaxloss": case.ours, "optax": case.optax, "autodiff": case.plain}
    compiled, compile_s = {}, {}
    for k, f in impls.items():
        compiled[k], compile_s[k] = timing.compile_timed(wrap(f), *inputs)
    outs = {k: timing.block(f(*inputs)) for k, f in compiled.items()}
    value_err, grad_err = _check(case, inputs, mode, outs)
    medians = timing.interleaved_medians(
        compiled, inputs, repeats=args.repeats, min_seconds=args.min_seconds
    )
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
        "compile_s": compile_s,
        "ratio_vs_optax": medians["jaxloss"] / medians["optax"],
        "ratio_vs_autodiff": medians["jaxloss"] / medians["autodiff"],
        "floor_bytes": floor_bytes,
        "roofline": floor_bytes / medians["jaxloss"] / copy_bw if n * c >= LARGE else None,
        "temp_bytes": {k: timing.temp_bytes(f) for k, f in compiled.items()},
    }
    if mode == "fwd+bwd":
        result["residual_bytes"] = {
            k: timing.residual_bytes(_mean_of(f), *inputs)[0] for k, f in impls.items()
        }
    return result


def run_per_example(case: Case, n, c, args) -> dict:
    """``vmap(grad(loss of one example))``: per-example gradients."""
    inputs = case.make(jax.random.key(7), n, c, jnp.float32)

    def per_example(f):
        def one(*a):  # one example: a [C] row and its label(s)
            return jnp.sum(f(*(v[None] for v in a)))

        return jax.vmap(jax.grad(one))

    impls = {"jaxloss": case.ours, "optax": case.optax, "autodiff": case.plain}
    compiled = {k: timing.compile_timed(per_example(f), *inputs)[0] for k, f in impls.items()}
    outs = {k: np.asarray(timing.block(f(*inputs))) for k, f in compiled.items()}
    err = float(np.max(np.abs(outs["jaxloss"] - outs["autodiff"])))
    assert err < 1e-4, f"{case.name}: per-example gradients differ from autodiff by {err}"
    medians = timing.interleaved_medians(
        compiled, inputs, repeats=args.repeats, min_seconds=args.min_seconds
    )
    return {
        "loss": case.name,
        "n": n,
        "c": c,
        "median_s": medians,
        "ratio_vs_optax": medians["jaxloss"] / medians["optax"],
        "ratio_vs_autodiff": medians["jaxloss"] / medians["autodiff"],
    }


def run_training_step(n, d, c, dtype, args) -> dict:
    """``value_and_grad`` of the mean sparse loss on ``h @ W`` w.r.t. ``(h, W)``."""
    k1, k2, k3 = jax.random.split(jax.random.key(11), 3)
    h = jax.random.normal(k1, (n, d), jnp.float32).astype(dtype)
    w = (jax.random.normal(k2, (d, c), jnp.float32) / np.sqrt(d)).astype(dtype)
    y = jax.random.randint(k3, (n,), 0, c)
    impls = {
        "jaxloss": jaxloss.sparse_categorical_cross_entropy,
        "optax": optax.softmax_cross_entropy_with_integer_labels,
        "autodiff": _plain_sparse,
    }

    def step(f):
        return jax.value_and_grad(lambda h, w, y: jnp.mean(f(h @ w, y)), argnums=(0, 1))

    compiled, compile_s = {}, {}
    for k, f in impls.items():
        compiled[k], compile_s[k] = timing.compile_timed(step(f), h, w, y)
    outs = {k: timing.block(f(h, w, y)) for k, f in compiled.items()}
    err = float(abs(outs["jaxloss"][0] - outs["autodiff"][0]))
    assert err < 1e-3, f"training step: loss differs from autodiff by {err}"
    medians = timing.interleaved_medians(
        compiled, (h, w, y), repeats=args.repeats, min_seconds=args.min_seconds
    )
    return {
        "n": n,
        "d": d,
        "c": c,
        "dtype": jnp.dtype(dtype).name,
        "median_s": medians,
        "compile_s": compile_s,
        "ratio_vs_optax": medians["jaxloss"] / medians["optax"],
        "temp_bytes": {k: timing.temp_bytes(f) for k, f in compiled.items()},
    }


# --------------------------------------------------------------------------------------
# Report.


def summary(results: list[dict]) -> list[dict]:
    """Geometric mean and worst cell of the ratio vs optax, per (loss, dtype, mode)."""
    groups: dict[tuple, list[dict]] = {}
    for r in results:
        groups.setdefault((r["loss"], r["dtype"], r["mode"]), []).append(r)
    rows = []
    for (loss, dtype, mode), rs in groups.items():
        worst = max(rs, key=lambda r: r["ratio_vs_optax"])
        rows.append(
            {
                "loss": loss,
                "dtype": dtype,
                "mode": mode,
                "geomean": timing.geomean([r["ratio_vs_optax"] for r in rs]),
                "worst": worst["ratio_vs_optax"],
                "worst_shape": f"{worst['n']} x {worst['c']}",
                "cells": len(rs),
            }
        )
    return rows


def _ms(s):
    return f"{s * 1e3:.2f} ms" if s < 0.1 else f"{s * 1e3:.0f} ms"


def markdown(report: dict) -> str:
    env = report["environment"]
    results = report["results"]
    out = [
        f"### {env['device']} ({env['backend']}), jax {env['jax']}, optax {env['optax']}",
        "",
        f"Measured {env['date']} with `{env['command']}`: copy bandwidth "
        f"{env['copy_bandwidth_gbs']:.1f} GB/s (bytes read + written), matmul "
        f"{env['matmul_gflops']:.0f} GFLOP/s (float32); malloc: "
        f"{env.get('malloc', 'system default')}. Times are medians of interleaved "
        "runs; a ratio below 1 means jaxloss is faster. Roofline = (byte floor / time) / "
        "copy bandwidth, for logits of at least 2**26 elements. Temp = compiled "
        "temporary memory; residuals = bytes kept between forward and backward beyond "
        "the inputs; compile = lowering + compilation.",
        "",
    ]
    if results:
        rows = summary(results)
        f32 = [r for r in results if r["dtype"] == "float32" and r["mode"] == "fwd+bwd"]
        every = timing.geomean([r["ratio_vs_optax"] for r in results])
        out += [
            "Summary, jaxloss time / optax time over the shapes:",
            "",
            "| loss | dtype | mode | geomean | worst cell |",
            "|---|---|---|---|---|",
        ]
        for r in rows:
            out.append(
                f"| {r['loss']} | {r['dtype']} | {r['mode']} | {r['geomean']:.2f}x "
                f"| {r['worst']:.2f}x ({r['worst_shape']}) |"
            )
        if f32:
            worst = max(f32, key=lambda r: r["ratio_vs_optax"])
            out += [
                "",
                f"float32 forward+backward, every loss and shape: geomean "
                f"{timing.geomean([r['ratio_vs_optax'] for r in f32]):.2f}x, worst "
                f"{worst['ratio_vs_optax']:.2f}x ({worst['loss']} {worst['n']} x {worst['c']}). "
                f"Every cell: geomean {every:.2f}x.",
            ]
        out += [
            "",
            "| loss | N x C | dtype | mode | jaxloss | optax | autodiff | vs optax "
            "| vs autodiff | compile (ours / optax) | temp (ours / optax) "
            "| residuals (ours / optax) | roofline |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in results:
            m, t, cs = r["median_s"], r["temp_bytes"], r["compile_s"]
            res = r.get("residual_bytes")
            out.append(
                f"| {r['loss']} | {r['n']} x {r['c']} | {r['dtype']} | {r['mode']} "
                f"| {_ms(m['jaxloss'])} | {_ms(m['optax'])} | {_ms(m['autodiff'])} "
                f"| {r['ratio_vs_optax']:.2f}x | {r['ratio_vs_autodiff']:.2f}x "
                f"| {cs['jaxloss']:.2f} / {cs['optax']:.2f} s "
                f"| {timing.fmt_bytes(t['jaxloss'])} / {timing.fmt_bytes(t['optax'])} | "
                + (
                    f"{timing.fmt_bytes(res['jaxloss'])} / {timing.fmt_bytes(res['optax'])}"
                    if res
                    else "-"
                )
                + " | "
                + (f"{100 * r['roofline']:.0f}%" if r["roofline"] else "-")
                + " |"
            )
    if report.get("per_example"):
        out += [
            "",
            "Per-example gradients, `vmap(grad(loss of one example))`, float32:",
            "",
            "| loss | N x C | jaxloss | optax | autodiff | vs optax | vs autodiff |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in report["per_example"]:
            m = r["median_s"]
            out.append(
                f"| {r['loss']} | {r['n']} x {r['c']} | {_ms(m['jaxloss'])} "
                f"| {_ms(m['optax'])} | {_ms(m['autodiff'])} | {r['ratio_vs_optax']:.2f}x "
                f"| {r['ratio_vs_autodiff']:.2f}x |"
            )
    if report.get("training_step"):
        out += [
            "",
            "Training step, `value_and_grad` of the mean sparse loss of `h @ W` w.r.t. "
            "`(h, W)` (the matmul dominates):",
            "",
            "| N x D x C | dtype | jaxloss | optax | autodiff | vs optax "
            "| compile (ours / optax) | temp (ours / optax) |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in report["training_step"]:
            m, t, cs = r["median_s"], r["temp_bytes"], r["compile_s"]
            out.append(
                f"| {r['n']} x {r['d']} x {r['c']} | {r['dtype']} | {_ms(m['jaxloss'])} "
                f"| {_ms(m['optax'])} | {_ms(m['autodiff'])} | {r['ratio_vs_optax']:.2f}x "
                f"| {cs['jaxloss']:.2f} / {cs['optax']:.2f} s "
                f"| {timing.fmt_bytes(t['jaxloss'])} / {timing.fmt_bytes(t['optax'])} |"
            )
    if not report.get("complete", True):
        out += ["", "Partial: written while the run was going on; it did not finish."]
    if report.get("left_out"):
        out += [
            "",
            f"Not measured (past `--budget`): {len(report['left_out'])} cells: "
            + "; ".join(report["left_out"])
            + ".",
        ]
    return "\n".join(out) + "\n"


def _shapes(text):
    return [tuple(int(v) for v in s.split("x")) for s in text.split(",") if s]


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Run the benchmark grid and write JSON and markdown results."
    )
    parser.add_argument("--quick", action="store_true", help="Tiny shapes and few repeats (CI).")
    parser.add_argument(
        "--losses",
        default=",".join(CASES),
        help=f"Comma-separated losses among {', '.join(CASES)} (default: all).",
    )
    parser.add_argument(
        "--shapes",
        default="",
        help="Comma-separated N x C shapes such as 1024x1000 (default: the grid).",
    )
    parser.add_argument("--dtypes", default="float32,bfloat16", help="Comma-separated dtypes.")
    parser.add_argument("--modes", default="fwd,fwd+bwd", help="Comma-separated modes.")
    parser.add_argument(
        "--no-extras",
        action="store_true",
        help="Skip the per-example and training-step tables.",
    )
    parser.add_argument("--repeats", type=int, default=7, help="Minimum timed runs per case.")
    parser.add_argument(
        "--min-seconds", type=float, default=1.0, help="Minimum timing per cell, in seconds."
    )
    parser.add_argument(
        "--out",
        default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"),
        help="Folder for the JSON and markdown results.",
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=None,
        help="Seconds after which no new cell starts (for a lent machine's time limit); "
        "the report lists the cells left out. The results are rewritten after every "
        "cell, so a run that is killed leaves what it measured.",
    )
    parser.add_argument(
        "--system-malloc",
        action="store_true",
        help="Time with glibc's default malloc, which maps fresh pages for every large "
        "buffer of every call (timing.keep_freed_memory, docs/benchmarks.md).",
    )
    args = parser.parse_args(argv)
    started = time.monotonic()
    malloc = (
        "system default (--system-malloc)" if args.system_malloc else timing.keep_freed_memory()
    )
    if args.quick:  # a smoke run: one shape, the training mode
        args.repeats, args.min_seconds = 3, 0.0
        if args.modes == parser.get_default("modes"):
            args.modes = "fwd+bwd"
        if args.dtypes == parser.get_default("dtypes"):
            args.dtypes = "float32"
    shapes = _shapes(args.shapes) or (QUICK_SHAPES if args.quick else GRID_SHAPES)

    backend = jax.default_backend()
    device = jax.devices()[0]
    kind = getattr(device, "device_kind", str(device))
    copy_bw = timing.copy_bandwidth(1 << 24 if args.quick else 1 << 29)
    flops = timing.matmul_flops(256 if args.quick else 2048)
    env = {
        "device": kind,
        "backend": backend,
        "jax": jax.__version__,
        "optax": optax.__version__,
        "jaxloss": jaxloss.__version__,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "date": time.strftime("%Y-%m-%d"),
        "command": "python benchmarks/run.py "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "copy_bandwidth_gbs": copy_bw / 1e9,
        "matmul_gflops": flops / 1e9,
        "malloc": malloc,
        "quick": args.quick,
    }
    print(
        f"{kind}: copy {env['copy_bandwidth_gbs']:.1f} GB/s, "
        f"matmul {env['matmul_gflops']:.0f} GFLOP/s",
        flush=True,
    )

    os.makedirs(args.out, exist_ok=True)
    stem = backend if backend == "cpu" else f"gpu-{re.sub(r'[^A-Za-z0-9]+', '-', kind).strip('-')}"
    stem = os.path.join(args.out, stem + ("-quick" if args.quick else ""))
    results, per_example, steps, left_out = [], [], [], []

    def over_budget(cell: str) -> bool:
        if args.budget is not None and time.monotonic() - started > args.budget:
            left_out.append(cell)
            return True
        return False

    def write(complete: bool = False) -> dict:
        report = {
            "complete": complete,  # False in the copies written while the run goes on
            "environment": env,
            "results": results,
            "summary": summary(results) if results else [],
            "per_example": per_example,
            "training_step": steps,
            "left_out": left_out,
        }
        for suffix, text in ((".json", json.dumps(report, indent=1)), (".md", markdown(report))):
            with open(stem + suffix + ".part", "w") as f:
                f.write(text)
            os.replace(stem + suffix + ".part", stem + suffix)
        return report

    for name in args.losses.split(","):
        case = CASES[name]
        for n, c in shapes:
            for dtype in args.dtypes.split(","):
                for mode in args.modes.split(","):
                    if over_budget(f"{name} {n}x{c} {dtype} {mode}"):
                        continue
                    r = run_cell(case, n, c, jnp.dtype(dtype), mode, copy_bw, args)
                    m = r["median_s"]
                    print(
                        f"{name:8s} {n:5d} x {c:6d} {r['dtype']:8s} {mode:7s} "
                        f"ours {_ms(m['jaxloss']):>10s} optax {_ms(m['optax']):>10s} "
                        f"ratio {r['ratio_vs_optax']:.2f}",
                        flush=True,
                    )
                    results.append(r)
                    write()
    if not args.no_extras:
        pe_shape = (16, 10) if args.quick else (512, 1000)
        for name in args.losses.split(","):
            if over_budget(f"per-example {name}"):
                continue
            r = run_per_example(CASES[name], *pe_shape, args)
            print(f"per-example {name}: ratio {r['ratio_vs_optax']:.2f}", flush=True)
            per_example.append(r)
            write()
        for n, d, c in [(16, 8, 32)] if args.quick else [(2048, 512, 8192)]:
            for dtype in args.dtypes.split(","):
                if over_budget(f"training step {n}x{d}x{c} {dtype}"):
                    continue
                r = run_training_step(n, d, c, jnp.dtype(dtype), args)
                print(
                    f"training step {n}x{d}x{c} {dtype}: ratio {r['ratio_vs_optax']:.2f}",
                    flush=True,
                )
                steps.append(r)
                write()

    report = write(complete=True)
    if left_out:
        print(f"--budget {args.budget:g} s: left out {len(left_out)} cells", flush=True)
    print(f"wrote {stem}.json and {stem}.md")
    return report


if __name__ == "__main__":
    main()
