"""Collectives of the vocabulary-parallel fused head, read from the compiled HLO.

Compiles (does not run) one training step's loss and gradients of
``linear_cross_entropy(..., axis_name="model")`` inside ``shard_map`` on ``k`` forced CPU
devices, at language-model shapes, and prints every collective with its size: the input
of ``docs/scaling.md``. Nothing is allocated: the inputs are abstract.

    python benchmarks/collectives.py                 # N=8192, D=4096, C=128256, k=8
    python benchmarks/collectives.py --devices 4 --classes 256000
"""

from __future__ import annotations

import argparse
import os
import re
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=8192, help="Tokens per step (N).")
    parser.add_argument("--dim", type=int, default=4096, help="Hidden size (D).")
    parser.add_argument("--classes", type=int, default=128256, help="Vocabulary size (C).")
    parser.add_argument("--devices", type=int, default=8, help="Vocabulary shards (k).")
    parser.add_argument("--reduction", default="mean", help="The loss's reduction.")
    args = parser.parse_args(argv)
    flags = os.environ.get("XLA_FLAGS", "")  # keep the caller's (the tests' cheaper compiling)
    os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={args.devices}"
    import jax
    import jax.numpy as jnp
    from jax.sharding import AxisType
    from jax.sharding import PartitionSpec as P

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
    import jaxloss

    n, d, c, k = args.tokens, args.dim, args.classes, args.devices
    c = -(-c // k) * k  # padded to a multiple of k, as a sharded vocabulary is
    mesh = jax.make_mesh((k,), ("model",), axis_types=(AxisType.Auto,))

    def local(h, w, y):
        return jaxloss.linear_cross_entropy(h, w, y, axis_name="model", reduction=args.reduction)

    loss = jax.shard_map(
        local, mesh=mesh, in_specs=(P(None, None), P(None, "model"), P(None)), out_specs=P()
    )
    shapes = (
        jax.ShapeDtypeStruct((n, d), jnp.bfloat16),
        jax.ShapeDtypeStruct((d, c), jnp.bfloat16),
        jax.ShapeDtypeStruct((n,), jnp.int32),
    )
    hlo = jax.jit(jax.value_and_grad(loss, (0, 1))).lower(*shapes).compile().as_text()
    print(f"N={n} D={d} C={c} k={k} ({c // k} classes per device), bfloat16 inputs")
    total = 0
    loops = hlo.count(" while(")
    trips = {  # loop body -> iterations (XLA's known trip count)
        body: int(n)
        for body, n in re.findall(r'body=%?([\w.\-]+).*?"known_trip_count":\{"n":"(\d+)"', hlo)
    }
    computation = None
    for line in hlo.splitlines():
        header = re.match(r"^(?:ENTRY )?%?([\w.\-]+) .*\{\s*$", line)
        if header:
            computation = header.group(1)
        m = re.search(
            r"= (.*?) (all-reduce|all-gather|reduce-scatter|all-to-all|collective-permute)"
            r"(-start)?\(",
            line,
        )
        if not m:
            continue
        size = 0
        for dtype, dims in re.findall(r"(\w+)\[([\d,]*)\]", m.group(1)):
            count = 1
            for x in filter(None, dims.split(",")):
                count *= int(x)
            size += count * {"bf16": 2, "f16": 2, "f32": 4, "s32": 4, "f64": 8}.get(dtype, 4)
        times = trips.get(computation, 1)
        total += size * times
        where = f"x {times} (loop)" if times > 1 else "once"
        print(f"  {m.group(2):>10}  {m.group(1)[:52]:<52} {size / 2**10:10.1f} KiB {where}")
    print(f"total per step: {total / 2**20:.2f} MiB")
    shard = n * c // k * 4 / 2**20
    print(f"while loops in the step: {loops}; logits shard [N, C/k]: {shard:.0f} MiB")


if __name__ == "__main__":
    main()
