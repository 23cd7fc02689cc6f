"""Fused linear + cross-entropy against the unfused head (docs/benchmarks.md).

    python benchmarks/linear.py            # 2048x512x32768, and compile-only 8192x1024x131072
    python benchmarks/linear.py --quick    # tiny shapes (the test suite runs this)

A training step's loss and gradients with respect to (hidden, weight):
``jaxloss.linear_cross_entropy`` (fused), ``sparse_categorical_cross_entropy(h @ W)``
and ``optax.softmax_cross_entropy_with_integer_labels(h @ W)`` (unfused), and, when
it is installed (``pip install -e ".[bench]"``), tokamax's
``linear_softmax_cross_entropy_loss`` (its XLA implementation), interleaved.
The roofline figure is 6 N D C flops (the floor) over the time, as a fraction of the
matmul rate measured in the same run. A float32 sweep of ``token_block_size`` (the
``"mean"`` path's chunk of tokens) gives the trade-off between time and memory.
Writes ``results/linear-<backend>[-quick].{json,md}``.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import json
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import timing  # noqa: E402

import jaxloss  # noqa: E402
from jaxloss import _linear as linear  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def _impls():
    def fused(h, w, y):
        return jaxloss.linear_cross_entropy(h, w, y, reduction="mean")

    def unfused(h, w, y):
        return jaxloss.sparse_categorical_cross_entropy(h @ w, y, reduction="mean")

    def optax_unfused(h, w, y):
        z = jnp.matmul(h, w, preferred_element_type=jnp.float32)
        return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(z, y))

    impls = {"fused": fused, "unfused": unfused, "optax": optax_unfused}
    try:
        import tokamax
        from absl import flags
    except ImportError:
        return impls
    # tokamax reads its options from absl flags and parses sys.argv for them on first
    # use, which fails inside another program (pytest's own flags): nothing to parse
    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()

    def tokamax_fused(h, w, y):  # traced under standard promotion (see main)
        return tokamax.linear_softmax_cross_entropy_loss(
            h, y, w, reduction="mean", implementation="xla"
        )

    return {**impls, "tokamax": tokamax_fused}


def _inputs(n, d, c, dtype):
    k1, k2, k3 = jax.random.split(jax.random.key(5), 3)
    h = jax.random.normal(k1, (n, d), jnp.float32).astype(dtype)
    w = (jax.random.normal(k2, (d, c), jnp.float32) / np.sqrt(d)).astype(dtype)
    return h, w, jax.random.randint(k3, (n,), 0, c)


def run_step(n, d, c, dtype, flops, args) -> dict:
    h, w, y = _inputs(n, d, c, dtype)
    step = {k: jax.value_and_grad(f, argnums=(0, 1)) for k, f in _impls().items()}
    compiled, compile_s = {}, {}
    for k, f in step.items():
        compiled[k], compile_s[k] = timing.compile_timed(f, h, w, y)
    outs = {k: timing.block(f(h, w, y)) for k, f in compiled.items()}
    err = abs(float(outs["fused"][0]) - float(outs["unfused"][0]))
    gerr = float(
        jnp.max(
            jnp.abs(
                outs["fused"][1][1].astype(jnp.float32) - outs["unfused"][1][1].astype(jnp.float32)
            )
        )
    )
    assert err < 1e-3 and gerr < 1e-3, (err, gerr)
    if "tokamax" in outs:  # the peer computes the same loss
        assert abs(float(outs["tokamax"][0]) - float(outs["unfused"][0])) < 1e-2
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
        "ratio_vs_unfused": medians["fused"] / medians["unfused"],
        "ratio_vs_optax": medians["fused"] / medians["optax"],
        "temp_bytes": {k: timing.temp_bytes(f) for k, f in compiled.items()},
        "roofline": 6 * n * d * c / medians["fused"] / flops,
        "value_error": err,
        "grad_error": gerr,
    }


def chunk_sweep(n, d, c, chunks, args) -> dict:
    """The ``"mean"`` path's time and memory for each ``token_block_size`` (float32),
    interleaved with the unfused step."""
    h, w, y = _inputs(n, d, c, jnp.float32)
    impls = _impls()
    steps = {k: jax.value_and_grad(impls[k], argnums=(0, 1)) for k in ("unfused", "optax")}
    for t in chunks:
        fused = functools.partial(
            jaxloss.linear_cross_entropy, reduction="mean", token_block_size=t
        )
        steps[t] = jax.value_and_grad(fused, argnums=(0, 1))
    compiled = {k: timing.compile_timed(f, h, w, y)[0] for k, f in steps.items()}
    medians = timing.interleaved_medians(
        compiled, (h, w, y), repeats=args.repeats, min_seconds=args.min_seconds
    )
    temps = {k: timing.temp_bytes(f) for k, f in compiled.items()}
    return {
        "n": n,
        "d": d,
        "c": c,
        "unfused_s": medians["unfused"],
        "optax_s": medians["optax"],
        "default": linear.token_block_for(n, c, d),
        "chunks": [{"tokens": t, "median_s": medians[t], "temp_bytes": temps[t]} for t in chunks],
    }


def compile_only(n, d, c, dtype) -> dict:
    shapes = (
        jax.ShapeDtypeStruct((n, d), dtype),
        jax.ShapeDtypeStruct((d, c), dtype),
        jax.ShapeDtypeStruct((n,), jnp.int32),
    )
    temps = {}
    for k, f in _impls().items():
        compiled = jax.jit(jax.value_and_grad(f, argnums=(0, 1))).lower(*shapes).compile()
        temps[k] = timing.temp_bytes(compiled)
    return {"n": n, "d": d, "c": c, "dtype": jnp.dtype(dtype).name, "temp_bytes": temps}


def markdown(report) -> str:
    env = report["env"]
    lines = [
        f"### Fused linear + cross-entropy, {env['backend']} ({env['device']}), jax {env['jax']}",
        "",
        f"Measured {env['date']} with `{env['command']}`: matmul {env['matmul_gflops']:.0f} "
        f"GFLOP/s; malloc: {env.get('malloc', 'system default')}. fwd+bwd of the mean "
        "loss w.r.t. (hidden, weight); ratios below 1 mean the fused loss is faster; "
        "roofline = 6 N D C / time / matmul rate.",
        "",
        "| N x D x C | dtype | fused | unfused (jaxloss) | unfused (optax) | vs unfused "
        "(jaxloss / optax) | temp fused / unfused / optax | fused temp, of the float32 "
        "logits | roofline | tokamax (XLA): time, temp |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["steps"]:
        m, t = r["median_s"], r["temp_bytes"]
        tk = "not installed"
        if "tokamax" in m:
            tk = (
                f"{m['tokamax'] * 1e3:.1f} ms ({m['tokamax'] / m['unfused']:.2f}x unfused), "
                f"{timing.fmt_bytes(t['tokamax'])}"
            )
        lines.append(
            f"| {r['n']} x {r['d']} x {r['c']} | {r['dtype']} | {m['fused'] * 1e3:.1f} ms | "
            f"{m['unfused'] * 1e3:.1f} ms | {m['optax'] * 1e3:.1f} ms | "
            f"{r['ratio_vs_unfused']:.2f}x / {r['ratio_vs_optax']:.2f}x | "
            f"{timing.fmt_bytes(t['fused'])} / "
            f"{timing.fmt_bytes(t['unfused'])} / {timing.fmt_bytes(t['optax'])} | "
            f"{t['fused'] / (r['n'] * r['c'] * 4):.0%} | {r['roofline']:.0%} | {tk} |"
        )
    if report["compile_only"]:
        lines += [
            "",
            "Compile-only (compiled temporaries of the training step):",
            "",
            "| N x D x C | dtype | fused | unfused (jaxloss) | unfused (optax) | tokamax (XLA) |",
            "|---|---|---|---|---|---|",
        ]
        for r in report["compile_only"]:
            t = r["temp_bytes"]
            tk = timing.fmt_bytes(t["tokamax"]) if "tokamax" in t else "not installed"
            lines.append(
                f"| {r['n']} x {r['d']} x {r['c']} | {r['dtype']} | "
                f"{timing.fmt_bytes(t['fused'])} | {timing.fmt_bytes(t['unfused'])} | "
                f"{timing.fmt_bytes(t['optax'])} | {tk} |"
            )
    sweep = report.get("chunk_sweep")
    if sweep:
        logits = sweep["n"] * sweep["c"] * 4
        lines += [
            "",
            f"`token_block_size` at {sweep['n']} x {sweep['d']} x {sweep['c']}, float32 "
            f"(unfused step: jaxloss {sweep['unfused_s'] * 1e3:.1f} ms, optax "
            f"{sweep['optax_s'] * 1e3:.1f} ms; logits {timing.fmt_bytes(logits)}; the "
            f"default is {sweep['default']} tokens):",
            "",
            "| tokens per chunk | time | vs unfused (jaxloss) | vs unfused (optax) "
            "| temporaries | of the logits |",
            "|---|---|---|---|---|---|",
        ]
        for r in sweep["chunks"]:
            lines.append(
                f"| {r['tokens']} | {r['median_s'] * 1e3:.1f} ms | "
                f"{r['median_s'] / sweep['unfused_s']:.2f}x | "
                f"{r['median_s'] / sweep['optax_s']:.2f}x | "
                f"{timing.fmt_bytes(r['temp_bytes'])} | {r['temp_bytes'] / logits:.0%} |"
            )
    return "\n".join(lines) + "\n"


def main(argv=None) -> dict:
    """Runs under JAX's standard dtype promotion whatever the caller set (the test
    suite sets strict): tokamax's code promotes implicitly."""
    with jax.numpy_dtype_promotion("standard"):
        return _main(argv)


def _main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--min-seconds", type=float, default=0.5)
    parser.add_argument("--out", default=os.path.join(HERE, "results"))
    parser.add_argument(
        "--system-malloc",
        action="store_true",
        help="Time with glibc's default malloc, which maps fresh pages for every large "
        "buffer of every call (timing.keep_freed_memory, docs/benchmarks.md).",
    )
    args = parser.parse_args(argv)
    malloc = (
        "system default (--system-malloc)" if args.system_malloc else timing.keep_freed_memory()
    )
    flops = timing.matmul_flops(256 if args.quick else 2048)
    shapes = [(64, 16, 1000)] if args.quick else [(2048, 512, 32768)]
    steps = [
        run_step(n, d, c, dt, flops, args)
        for n, d, c in shapes
        for dt in (jnp.float32, jnp.bfloat16)
    ]
    for r in steps:
        print(
            f"{r['n']}x{r['d']}x{r['c']} {r['dtype']}: fused/unfused "
            f"{r['ratio_vs_unfused']:.2f}, roofline {r['roofline']:.0%}",
            flush=True,
        )
    n, d, c = shapes[0]
    chunks = [8, 16, 32] if args.quick else [64, 128, 256, 512]
    sweep = chunk_sweep(n, d, c, sorted({*chunks, linear.token_block_for(n, c, d)}), args)
    big = (
        []
        if args.quick
        else [compile_only(8192, 1024, 131072, dt) for dt in (jnp.float32, jnp.bfloat16)]
    )
    device = jax.devices()[0]
    report = {
        "env": {
            "backend": jax.default_backend(),
            "device": device.device_kind,
            "jax": jax.__version__,
            "date": datetime.date.today().isoformat(),
            "command": "python benchmarks/linear.py "
            + " ".join(argv if argv is not None else sys.argv[1:]),
            "matmul_gflops": flops / 1e9,
            "malloc": malloc,
        },
        "steps": steps,
        "chunk_sweep": sweep,
        "compile_only": big,
    }
    os.makedirs(args.out, exist_ok=True)
    stem = os.path.join(
        args.out, f"linear-{jax.default_backend()}" + ("-quick" if args.quick else "")
    )
    with open(stem + ".json", "w") as f:
        json.dump(report, f, indent=1)
    with open(stem + ".md", "w") as f:
        f.write(markdown(report))
    print(f"wrote {stem}.json and {stem}.md")
    return report


if __name__ == "__main__":
    main()
