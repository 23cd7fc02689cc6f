"""Test configuration: strict dtype promotion, so no silent upcasts hide in the code, and
cheaper compilation and garbage collection.

The suite compiles thousands of small programs, and compiling dominates its time on 2
cores. Two settings make compiling cheaper without changing what the tests read:

* ``jax_disable_most_optimizations`` skips LLVM's expensive passes (the backend's
  optimization level); about 25% off.
* ``--xla_cpu_use_fusion_emitters=false`` generates the CPU code of fused computations
  with XLA's older emitters, which compile faster; about another 40% off.
* ``--xla_cpu_parallel_codegen_split_count=1`` compiles each program's machine code in
  one piece. XLA splits it to compile the parts on several threads, but ``pytest -n
  auto`` already keeps every core busy, and the split costs about 20% of the compile
  time of a check_derivatives program (0.83-0.97 s against 1.04-1.35 s, 2-core VM).

XLA's own passes (fusion, CSE, buffer assignment), which the memory and HLO tests read,
run either way. The XLA flags are set only if this XLA still knows them (an unknown flag
is a fatal error), checked once in a subprocess.
"""

import gc
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

FAST_COMPILE_FLAGS = (
    "--xla_cpu_use_fusion_emitters=false",
    "--xla_cpu_parallel_codegen_split_count=1",
)


def _xla_accepts(flags: str) -> bool:
    env = dict(os.environ, XLA_FLAGS=f"{os.environ.get('XLA_FLAGS', '')} {flags}".strip())
    env["JAX_PLATFORMS"] = "cpu"
    probe = "import jax, jax.numpy as jnp; jnp.ones(2).sum().block_until_ready()"
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True)
    return done.returncode == 0


_new = [f for f in FAST_COMPILE_FLAGS if f.split("=")[0] not in os.environ.get("XLA_FLAGS", "")]
if _new and not _xla_accepts(" ".join(_new)):  # some flag is unknown: keep the known ones
    _new = [f for f in _new if _xla_accepts(f)]
if _new:
    os.environ["XLA_FLAGS"] = " ".join([os.environ.get("XLA_FLAGS", ""), *_new]).strip()

# Tracing makes millions of short-lived Python objects, and with the default thresholds
# the cyclic garbage collector took about 6% of the suite's CPU time (8.7 of 133 s in
# three test files) re-scanning the long-lived ones: they are frozen after the imports,
# and collections run less often (1 to 2 s there).
gc.freeze()
gc.set_threshold(100_000, 20, 100)

jax.config.update("jax_numpy_dtype_promotion", "strict")
try:
    jax.config.update("jax_disable_most_optimizations", True)
except AttributeError:  # a JAX without the option: compile as usual
    pass


@pytest.fixture
def rng():
    """A fresh, seeded NumPy generator per test."""
    return np.random.default_rng(0)


# The longest tests start first, so that the two workers of ``pytest -n auto`` are not
# left waiting on one of them at the end.
SLOW_FIRST = (
    "tests/test_mesh.py",
    "tests/test_optax_names.py::test_optax_test_module_on_jaxloss",
    "tests/test_docs.py",
    "tests/test_properties.py::test_masked_rows_and_second_order",
    "tests/test_examples.py::test_language_model",
)


def pytest_collection_modifyitems(config, items):
    def rank(item):
        for i, prefix in enumerate(SLOW_FIRST):
            if item.nodeid.startswith(prefix):
                return i
        return len(SLOW_FIRST)

    items.sort(key=rank)  # stable: everything else keeps its order
