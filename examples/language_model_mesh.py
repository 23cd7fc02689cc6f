"""The language-model example on a 2 x 4 ("data" x "model") mesh of forced CPU devices,
its head split over "model": ``linear_cross_entropy(..., axis_name="model")``.

The model, corpus and tokenizer are those of ``language_model.py``. The batch is split
over "data"; the tied embedding (the head's weight) is split along the vocabulary over
"model", so each device holds ``[C / 4, D]`` of it. The head runs inside
``jax.shard_map``: each device works through its own vocabulary shard a chunk of tokens
at a time, and the devices exchange a few numbers per token and the hidden states'
gradient. The rest of the model is left to the compiler (plain ``jit``).

The run prints the training loss and held-out perplexity, then, side by side for this
fused vocabulary-parallel head and the unfused head (``h @ E.T`` on the same mesh,
then the cross-entropy on class-sharded logits): the bytes every collective of one
training step moves (read from the compiled HLO), and the per-device memory of the
head's logits, of which the fused head holds one chunk at a time.

    pip install -e ".[examples]"
    python examples/language_model_mesh.py               # about two minutes on 2 CPU cores
    python examples/language_model_mesh.py --steps 3 --corpus-mb 0.05 --vocab-size 400
"""

from __future__ import annotations

import functools
import os
import re
import sys

MESH = (2, 4)  # ("data", "model")
if "jax" not in sys.modules:  # 8 CPU devices; must be set before JAX starts
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" not in flags:
        count = MESH[0] * MESH[1]
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={count}"

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from flax import nnx  # noqa: E402
from jax.sharding import AxisType, NamedSharding  # noqa: E402
from jax.sharding import PartitionSpec as P  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _shared import describe_backend, make_parser  # noqa: E402
from language_model import (  # noqa: E402
    DecoderLM,
    add_arguments,
    batches,
    stdlib_corpus,
    train_tokenizer,
)

import jaxloss  # noqa: E402

COLLECTIVE = re.compile(
    r"= (.*?) (all-reduce|all-gather|reduce-scatter|all-to-all|collective-permute)(-start)?\("
)
BYTES = {"bf16": 2, "f16": 2, "f32": 4, "s32": 4, "u32": 4, "pred": 1, "f64": 8, "s64": 8}


def collective_bytes(hlo: str, names: dict[int, str]) -> dict[str, int]:
    """Bytes the collectives of one compiled program move per device, by what they
    carry: ``names`` maps an operand's element count to a name (others: "other").
    A collective inside a loop counts once per iteration (XLA's known trip count)."""
    trips = {  # loop body -> iterations
        body: int(n)
        for body, n in re.findall(
            r"body=%?([\w.\-]+).*?\"known_trip_count\":\{\"n\":\"(\d+)\"", hlo
        )
    }
    out: dict[str, int] = {}
    computation = None
    for line in hlo.splitlines():
        header = re.match(r"^(?:ENTRY )?%?([\w.\-]+) .*\{\s*$", line)
        if header:
            computation = header.group(1)
        match = COLLECTIVE.search(line)
        if match:
            for dtype, dims in re.findall(r"(\w+)\[([\d,]*)\]", match.group(1)):
                count = int(np.prod([int(d) for d in dims.split(",") if d]))
                name = names.get(count, "other")
                size = BYTES.get(dtype, 4) * count * trips.get(computation, 1)
                out[name] = out.get(name, 0) + size
    return out


def make_head_losses(mesh):
    """The fused vocabulary-parallel head and the unfused one, as ``loss(h, w, y)`` with
    ``h`` [B, T, D] split over "data", ``w`` [D, C] over "model", ``y`` [B, T]."""

    def fused_local(h, w, y):
        total = jaxloss.linear_cross_entropy(
            h.reshape(-1, h.shape[-1]), w, y.reshape(-1), z_loss=1e-4, axis_name="model",
            reduction="sum",
        )  # fmt: skip
        return jax.lax.psum(total, "data")

    fused_sum = jax.shard_map(
        fused_local,
        mesh=mesh,
        in_specs=(P("data", None, None), P(None, "model"), P("data", None)),
        out_specs=P(),
    )

    def fused(h, w, y):
        return fused_sum(h, w, y) / y.size

    def unfused(h, w, y):
        logits = h @ w  # [B, T, C]: the compiler splits it over "data" and "model"
        logits = jax.lax.with_sharding_constraint(
            logits, NamedSharding(mesh, P("data", None, "model"))
        )
        return jaxloss.sparse_categorical_cross_entropy(logits, y, z_loss=1e-4, reduction="mean")

    return fused, unfused


def main(argv=None) -> dict:
    parser = make_parser(__doc__, __file__)
    add_arguments(parser, steps=200)
    args = parser.parse_args(argv)
    if args.batch % MESH[0]:
        parser.error(f"--batch must be a multiple of {MESH[0]}, the data axis; got {args.batch}")
    if len(jax.devices()) < MESH[0] * MESH[1]:
        raise SystemExit(
            f"needs {MESH[0] * MESH[1]} devices, found {len(jax.devices())}: run it as a "
            "script (it forces 8 CPU devices before JAX starts)"
        )

    describe_backend()
    mesh = jax.make_mesh(MESH, ("data", "model"), axis_types=(AxisType.Auto,) * 2)
    text = stdlib_corpus(args.corpus_mb)
    tokenizer = train_tokenizer(text, args.vocab_size)
    ids = np.asarray(tokenizer.encode(text).ids, np.int32)
    vocab = -(-tokenizer.get_vocab_size() // MESH[1]) * MESH[1]  # padded to split evenly
    split = int(0.95 * len(ids))
    train_ids, test_ids = ids[:split], ids[split:]
    print(f"corpus: {len(ids):,} tokens, vocabulary {vocab:,} (padded to a multiple of "
          f"{MESH[1]}); mesh {MESH[0]} x {MESH[1]} (data x model)")  # fmt: skip

    model = DecoderLM(vocab, args.dim, args.layers, args.heads, args.seq_len,
                      rngs=nnx.Rngs(args.seed))  # fmt: skip
    graphdef, params = nnx.split(model, nnx.Param)

    # The embedding [C, D] (the head's weight, transposed) is split along the vocabulary
    # over "model"; every other parameter is replicated.
    def place(path, x):
        spec = P("model", None) if path[0].key == "embed" else P()
        return jax.device_put(x, NamedSharding(mesh, spec))

    params = jax.tree_util.tree_map_with_path(place, params)
    optimizer = optax.adamw(args.learning_rate)
    opt_state = jax.jit(optimizer.init)(params)
    fused_head, unfused_head = make_head_losses(mesh)

    def loss_fn(params, inputs, targets, head):
        model = nnx.merge(graphdef, params)
        return head(model.hidden(inputs), model.head(), targets)

    @functools.partial(jax.jit, static_argnames="head", donate_argnums=(0, 1))
    def step(params, opt_state, inputs, targets, head=fused_head):
        loss, grads = jax.value_and_grad(loss_fn)(params, inputs, targets, head)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    data = NamedSharding(mesh, P("data", None))
    rng = np.random.default_rng(args.seed)

    def batch(ids, rng):
        return [jax.device_put(a, data) for a in batches(ids, args.seq_len, args.batch, rng)]

    # Compiled once, ahead of time: the training loop calls this program, and the report
    # below reads its collectives and memory.
    probe = batch(train_ids, np.random.default_rng(args.seed))  # shapes and shardings
    compiled_steps = {"fused": step.lower(params, opt_state, *probe).compile()}
    losses = []
    for i in range(args.steps):
        params, opt_state, loss = compiled_steps["fused"](params, opt_state, *batch(train_ids, rng))
        losses.append(float(loss))
        if i % 50 == 0 or i == args.steps - 1:
            print(f"step {i:4d}  loss {losses[-1]:.3f}", flush=True)
    eval_loss = jax.jit(functools.partial(loss_fn, head=fused_head))
    test_rng = np.random.default_rng(args.seed + 1)
    test_loss = float(np.mean([eval_loss(params, *batch(test_ids, test_rng)) for _ in range(4)]))
    print(f"held-out loss {test_loss:.3f} (perplexity {np.exp(test_loss):.1f}) after "
          f"{args.steps} steps")  # fmt: skip

    # Compiled with each head: what crosses devices, and the compiler's temporaries;
    # for the head alone (loss and gradients w.r.t. hidden and weight) and for the
    # whole training step (which adds the data-parallel sum of every gradient).
    inputs, targets = batch(train_ids, rng)
    model = nnx.merge(graphdef, params)
    hidden = jax.device_put(
        jnp.zeros((args.batch, args.seq_len, args.dim)), NamedSharding(mesh, P("data"))
    )
    weight = model.head()
    assert weight.sharding.spec == P(None, "model"), weight.sharding  # the head is split
    tokens = args.batch * args.seq_len
    local_tokens, local_vocab = tokens // MESH[0], vocab // MESH[1]
    names = {  # what a collective carries, by its element count
        args.dim * local_vocab: "dW [D, C/4], summed over data",
        local_tokens * args.dim: "dh [N/2, D], summed over model",
    }
    report = {}
    for name, head in (("fused", fused_head), ("unfused", unfused_head)):
        head_step = jax.jit(jax.value_and_grad(head, (0, 1)))
        programs = {
            "head": head_step.lower(hidden, weight, targets).compile(),
            "step": compiled_steps.get(name)
            or step.lower(params, opt_state, inputs, targets, head=head).compile(),
        }
        for part, compiled in programs.items():
            report[f"{part}/{name}"] = {
                "collective_bytes": collective_bytes(compiled.as_text(), names),
                "temp_bytes": compiled.memory_analysis().temp_size_in_bytes,
            }
    kinds = [*names.values(), "other"]
    print(f"per device, {tokens} tokens x {vocab:,} classes:    fused (axis_name)   unfused (jit)")
    fused, unfused = report["head/fused"], report["head/unfused"]
    print("  the head alone (loss, d/dh, d/dW), collective bytes")
    for kind in kinds:
        a, b = (r["collective_bytes"].get(kind, 0) / 2**10 for r in (fused, unfused))
        print(f"    {kind:<44}{a:>10.1f} KiB{b:>12.1f} KiB")
    for part, title in (("head", "the head alone"), ("step", "one training step")):
        fused, unfused = report[f"{part}/fused"], report[f"{part}/unfused"]
        if part == "step":
            a, b = (sum(r["collective_bytes"].values()) / 2**10 for r in (fused, unfused))
            print(f"  {title}, all collective bytes{'':<21}{a:>10.1f} KiB{b:>12.1f} KiB")
        a, b = (r["temp_bytes"] / 2**10 for r in (fused, unfused))
        print(f"  {title}, compiled temporaries{'':<22}{a:>10.1f} KiB{b:>12.1f} KiB")
    logits_shard = local_tokens * local_vocab * 4
    print(
        f"  the unfused head's logits [N/{MESH[0]}, C/{MESH[1]}] in float32: "
        f"{logits_shard / 2**20:.1f} MiB per device; the fused head holds a chunk of them"
    )
    return {
        "vocab": vocab,
        "train_loss": losses,
        "test_loss": test_loss,
        "compiled": report,
        "logits_shard_bytes": logits_shard,
    }


if __name__ == "__main__":
    main()
