"""A change against its base: jaxloss at a git revision, jaxloss as checked out, and
optax, timed interleaved in one process (docs/benchmarks.md).

    python benchmarks/compare.py --base HEAD~1 --losses soft,kl --shapes 8192x1000
    python benchmarks/compare.py --base main --modes fwd,fwd+bwd,per-example --rounds 3

On a noisy machine the grid's ratios against optax move with optax's own spread (its
programs are sometimes bimodal); the ratio of the new code to the old one, measured
side by side, is what a kernel change should be judged by. The base revision's
``jaxloss/`` is exported with ``git archive`` into a temporary folder and imported
as ``jaxloss_base`` (the package only imports itself relatively). Each round prints
new/base and new/optax; values are checked to agree first.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tarfile
import tempfile

import jax
import jax.numpy as jnp
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import run  # noqa: E402
import timing  # noqa: E402


def import_base(rev: str):
    """``jaxloss`` as of git revision ``rev``, imported as ``jaxloss_base``."""
    root = subprocess.run(
        ["git", "rev-parse", "--show-toplevel"],
        cwd=HERE,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    folder = tempfile.mkdtemp(prefix="jaxloss_base_")
    archive = os.path.join(folder, "base.tar")
    subprocess.run(["git", "archive", "-o", archive, rev, "jaxloss"], cwd=root, check=True)
    with tarfile.open(archive) as tar:
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}  # Python 3.11.4+
        tar.extractall(folder, **safe)
    os.rename(os.path.join(folder, "jaxloss"), os.path.join(folder, "jaxloss_base"))
    sys.path.insert(0, folder)
    import jaxloss_base

    return jaxloss_base


def _wrap(f, mode):
    if mode == "fwd":
        return run._mean_of(f)
    if mode == "fwd+bwd":
        return run._grad_of(f)

    def one(*a):  # per-example gradients: vmap(grad) of one example's loss
        return jnp.sum(f(*(v[None] for v in a)))

    return jax.vmap(jax.grad(one))


def compare(base, loss, n, c, dtype, mode, rounds, min_seconds):
    case = run.CASES[loss]
    inputs = case.make(jax.random.key(7), n, c, dtype)
    impls = {
        "new": case.ours,
        "base": getattr(base, case.ours.__name__),
        "optax": case.optax,
    }
    compiled = {k: jax.jit(_wrap(f, mode)).lower(*inputs).compile() for k, f in impls.items()}
    outs = {k: jax.tree.leaves(f(*inputs)) for k, f in compiled.items()}
    for a, b in zip(outs["new"], outs["base"]):
        a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5 * max(1.0, np.abs(b).max()))
    rows = []
    for _ in range(rounds):
        m = timing.interleaved_medians(compiled, inputs, min_seconds=min_seconds)
        rows.append(m)
        print(
            f"{loss:8s} {mode:11s} {n:5d} x {c:6d} {jnp.dtype(dtype).name:8s} "
            f"new {m['new'] * 1e3:8.2f} ms  base {m['base'] * 1e3:8.2f} ms  "
            f"optax {m['optax'] * 1e3:8.2f} ms | new/base {m['new'] / m['base']:.2f}  "
            f"new/optax {m['new'] / m['optax']:.2f}  base/optax {m['base'] / m['optax']:.2f}",
            flush=True,
        )
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="HEAD", help="Git revision to compare against.")
    parser.add_argument("--losses", default="soft,kl", help=f"Among {', '.join(run.CASES)}.")
    parser.add_argument("--shapes", default="8192x1000,4096x32768")
    parser.add_argument("--dtypes", default="float32")
    parser.add_argument("--modes", default="fwd,fwd+bwd", help="fwd, fwd+bwd, per-example.")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--min-seconds", type=float, default=1.0)
    parser.add_argument(
        "--system-malloc",
        action="store_true",
        help="Time with glibc's default malloc, which maps fresh pages for every large "
        "buffer of every call (timing.keep_freed_memory, docs/benchmarks.md).",
    )
    args = parser.parse_args(argv)
    if not args.system_malloc:
        print("malloc:", timing.keep_freed_memory())
    base = import_base(args.base)
    results = []
    for loss in args.losses.split(","):
        for n, c in run._shapes(args.shapes):
            for dtype in args.dtypes.split(","):
                for mode in args.modes.split(","):
                    rows = compare(
                        base, loss, n, c, jnp.dtype(dtype), mode, args.rounds, args.min_seconds
                    )
                    results.append(((loss, n, c, dtype, mode), rows))
    return results


if __name__ == "__main__":
    main()
