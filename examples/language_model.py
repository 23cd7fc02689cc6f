"""A small decoder-only transformer language model (Flax NNX) whose head never builds
its logits: ``jaxloss.linear_cross_entropy`` on the tied embedding.

The corpus is the Python standard library's own source code (every machine with
Python has it); a byte-level BPE tokenizer with a 32,768-token vocabulary is trained
on it offline with the ``tokenizers`` library. The run prints the training loss, the
held-out perplexity, and the compiled temporary memory of one training step with the
fused head next to the unfused one (``h @ E.T`` then cross-entropy).

    pip install -e ".[examples]"
    python examples/language_model.py                 # a few minutes on 2 CPU cores
    python examples/language_model.py --steps 3 --corpus-mb 0.3 --vocab-size 2048  # smoke
"""

from __future__ import annotations

import os
import pathlib
import sys
import sysconfig
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _shared import describe_backend, make_parser  # noqa: E402

import jaxloss  # noqa: E402


def stdlib_corpus(megabytes: float) -> str:
    """The first ``megabytes`` of the standard library's .py files, in a fixed order."""
    root = pathlib.Path(sysconfig.get_paths()["stdlib"])
    budget, parts = int(megabytes * 2**20), []
    for path in sorted(root.glob("*.py")):
        text = path.read_text(encoding="utf-8", errors="ignore")
        parts.append(text[: budget - sum(map(len, parts))])
        if sum(map(len, parts)) >= budget:
            break
    return "\n".join(parts)


def train_tokenizer(text: str, vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    chunks = [text[i : i + 4096] for i in range(0, len(text), 4096)]
    tokenizer.train_from_iterator(chunks, trainer=trainer)
    return tokenizer


class Block(nnx.Module):
    def __init__(self, dim: int, heads: int, *, rngs: nnx.Rngs):
        self.norm1 = nnx.LayerNorm(dim, rngs=rngs)
        self.attn = nnx.MultiHeadAttention(
            num_heads=heads, in_features=dim, decode=False, rngs=rngs
        )
        self.norm2 = nnx.LayerNorm(dim, rngs=rngs)
        self.up = nnx.Linear(dim, 4 * dim, rngs=rngs)
        self.down = nnx.Linear(4 * dim, dim, rngs=rngs)

    def __call__(self, x, mask):
        x = x + self.attn(self.norm1(x), mask=mask)
        return x + self.down(jax.nn.gelu(self.up(self.norm2(x))))


class DecoderLM(nnx.Module):
    """Token and position embeddings, pre-norm blocks; the head is the tied embedding."""

    def __init__(self, vocab: int, dim: int, layers: int, heads: int, seq_len: int, *,
                 rngs: nnx.Rngs):  # fmt: skip
        self.embed = nnx.Embed(vocab, dim, rngs=rngs)
        self.pos = nnx.Embed(seq_len, dim, rngs=rngs)
        self.blocks = nnx.List([Block(dim, heads, rngs=rngs) for _ in range(layers)])
        self.norm = nnx.LayerNorm(dim, rngs=rngs)

    def hidden(self, tokens):
        x = self.embed(tokens) + self.pos(jnp.arange(tokens.shape[-1]))
        mask = nnx.make_causal_mask(tokens)
        for block in self.blocks:
            x = block(x, mask)
        return self.norm(x)

    def head(self):
        return self.embed.embedding[...].T  # [dim, vocab]


def fused_loss(model, inputs, targets):
    return jaxloss.linear_cross_entropy(
        model.hidden(inputs), model.head(), targets, z_loss=1e-4, reduction="mean"
    )


def unfused_loss(model, inputs, targets):
    logits = model.hidden(inputs) @ model.head()
    return jaxloss.sparse_categorical_cross_entropy(logits, targets, z_loss=1e-4,
                                                    reduction="mean")  # fmt: skip


def batches(ids: np.ndarray, seq_len: int, batch: int, rng: np.random.Generator):
    starts = rng.integers(0, len(ids) - seq_len - 1, batch)
    window = np.stack([ids[s : s + seq_len + 1] for s in starts])
    return jnp.asarray(window[:, :-1]), jnp.asarray(window[:, 1:])


def add_arguments(parser, steps: int = 300) -> None:
    """The options of the language-model examples (this one and the mesh one)."""
    parser.add_argument("--steps", type=int, default=steps, help="Number of AdamW training steps.")
    parser.add_argument(
        "--corpus-mb",
        type=float,
        default=4.0,
        help="Size of the corpus in MiB: the first .py files of the standard library, in "
        "name order.",
    )
    parser.add_argument(
        "--vocab-size",
        type=int,
        default=32768,
        help="Vocabulary size the byte-level BPE tokenizer is trained to (at most).",
    )
    parser.add_argument(
        "--dim", type=int, default=128, help="Width of the model (the embedding dimension)."
    )
    parser.add_argument("--layers", type=int, default=2, help="Number of transformer blocks.")
    parser.add_argument(
        "--heads", type=int, default=4, help="Number of attention heads in each block."
    )
    parser.add_argument(
        "--seq-len", type=int, default=64, help="Tokens per training sequence (the context length)."
    )
    parser.add_argument("--batch", type=int, default=16, help="Sequences per training batch.")
    parser.add_argument("--learning-rate", type=float, default=3e-3, help="AdamW's learning rate.")
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="Seed of the initialization, the training batches and the held-out batches.",
    )


def main(argv=None) -> dict:
    parser = make_parser(__doc__, __file__)
    add_arguments(parser)
    args = parser.parse_args(argv)

    describe_backend()
    text = stdlib_corpus(args.corpus_mb)
    tokenizer = train_tokenizer(text, args.vocab_size)
    vocab = tokenizer.get_vocab_size()
    ids = np.asarray(tokenizer.encode(text).ids, np.int32)
    split = int(0.95 * len(ids))
    train_ids, test_ids = ids[:split], ids[split:]
    print(f"corpus: {len(text) / 2**20:.1f} MiB of stdlib source, {len(ids):,} tokens, "
          f"vocabulary {vocab:,}")  # fmt: skip

    model = DecoderLM(vocab, args.dim, args.layers, args.heads, args.seq_len,
                      rngs=nnx.Rngs(args.seed))  # fmt: skip
    optimizer = nnx.Optimizer(model, optax.adamw(args.learning_rate), wrt=nnx.Param)

    @nnx.jit
    def step(model, optimizer, inputs, targets):
        loss, grads = nnx.value_and_grad(fused_loss)(model, inputs, targets)
        optimizer.update(model, grads)
        return loss

    rng = np.random.default_rng(args.seed)
    losses = []
    start = None
    for i in range(args.steps):
        loss = float(step(model, optimizer, *batches(train_ids, args.seq_len, args.batch, rng)))
        losses.append(loss)
        if i == 0:
            start = time.perf_counter()  # after the first step, which compiles
        if i % 50 == 0 or i == args.steps - 1:
            print(f"step {i:4d}  loss {loss:.3f}", flush=True)
    tokens_per_s = None
    if args.steps > 1:
        tokens_per_s = (args.steps - 1) * args.batch * args.seq_len / (time.perf_counter() - start)
        print(f"training: {tokens_per_s:,.0f} tokens/s", flush=True)

    eval_loss = nnx.jit(fused_loss)
    test_rng = np.random.default_rng(args.seed + 1)
    test_loss = float(np.mean([
        float(eval_loss(model, *batches(test_ids, args.seq_len, args.batch, test_rng)))
        for _ in range(8)
    ]))  # fmt: skip

    # What the fused head saves: compiled temporaries of one gradient step.
    inputs, targets = batches(train_ids, args.seq_len, args.batch, rng)
    graphdef, state = nnx.split(model)

    def temp(loss_fn):
        def f(state, inputs, targets):
            return jax.grad(lambda s: loss_fn(nnx.merge(graphdef, s), inputs, targets))(state)

        compiled = jax.jit(f).lower(state, inputs, targets).compile()
        return compiled.memory_analysis().temp_size_in_bytes

    fused, unfused = temp(fused_loss), temp(unfused_loss)
    tokens = args.batch * args.seq_len
    print(f"held-out loss {test_loss:.3f} (perplexity {np.exp(test_loss):.1f}) after "
          f"{args.steps} steps")  # fmt: skip
    print(f"compiled temporaries of a gradient step, {tokens} tokens x {vocab:,} classes: "
          f"fused head {fused / 2**20:.1f} MiB, unfused {unfused / 2**20:.1f} MiB "
          f"(the logits alone: {tokens * vocab * 4 / 2**20:.1f} MiB)")  # fmt: skip
    return {
        "vocab": vocab,
        "train_loss": losses,
        "test_loss": test_loss,
        "tokens_per_s": tokens_per_s,
        "temp_bytes": {"fused": fused, "unfused": unfused},
    }


if __name__ == "__main__":
    main()
