"""Quickstart: softmax regression trained with jaxloss and optax, loss printed as it falls.

python examples/quickstart.py            # full run, a few seconds on a CPU
python examples/quickstart.py --steps 5  # smoke run
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import optax

import jaxloss


def make_data(key, num_examples=2048, num_features=16, num_classes=5):
    """Gaussian blobs: one cluster centre per class, labels known."""
    k_centres, k_labels, k_noise = jax.random.split(key, 3)
    centres = 0.6 * jax.random.normal(k_centres, (num_classes, num_features))
    labels = jax.random.randint(k_labels, (num_examples,), 0, num_classes)
    features = centres[labels] + jax.random.normal(k_noise, (num_examples, num_features))
    return features, labels


def main(argv=None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--learning-rate", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    print(f"JAX {jax.__version__} on {jax.default_backend()}: {jax.devices()}")
    features, labels = make_data(jax.random.key(args.seed))
    num_classes = int(labels.max()) + 1
    params = {
        "w": jnp.zeros((features.shape[1], num_classes)),
        "b": jnp.zeros(num_classes),
    }
    optimizer = optax.adam(args.learning_rate)
    opt_state = optimizer.init(params)

    def loss_fn(params):
        logits = features @ params["w"] + params["b"]
        return jaxloss.sparse_categorical_cross_entropy(
            logits, labels, label_smoothing=0.05, reduction="mean"
        )

    @jax.jit
    def step(params, opt_state):
        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = optimizer.update(grads, opt_state)
        return optax.apply_updates(params, updates), opt_state, loss

    every = max(1, args.steps // 10)
    loss = float("nan")
    for i in range(args.steps):
        params, opt_state, loss = step(params, opt_state)
        if i % every == 0 or i == args.steps - 1:
            print(f"step {i:4d}  loss {float(loss):.4f}")
    logits = features @ params["w"] + params["b"]
    accuracy = float(jnp.mean(jnp.argmax(logits, -1) == labels))
    print(f"final loss {float(loss):.4f}, training accuracy {accuracy:.3f}")
    return float(loss)


if __name__ == "__main__":
    main()
