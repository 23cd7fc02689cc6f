"""The shared measuring helpers of the benchmark scripts (method: docs/benchmarks.md).

* :func:`compile_timed` compiles ahead of time and reports how long it took;
* :func:`interleaved_medians` times compiled functions alternately (A B A B ...),
  blocking on every output, and returns each one's median;
* :func:`copy_bandwidth` and :func:`matmul_flops` measure the machine's two ceilings in
  the same process;
* :func:`temp_bytes` and :func:`residual_bytes` report what a function needs in memory;
* :func:`geomean` summarizes ratios;
* :func:`keep_freed_memory` stops glibc from handing large buffers back to the
  system between calls, so that timings measure the kernels, not page faults.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import io
import math
import re
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax.ad_checkpoint import print_saved_residuals

# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def keep_freed_memory(limit: int = 2**31 - 1) -> str:
    """Make glibc's malloc keep freed buffers of up to ``limit`` bytes for reuse, and
    say what was done (for the report's environment).

    XLA:CPU allocates every output and temporary buffer with ``malloc``. By default
    glibc serves a buffer of more than 128 KiB (a threshold that grows to 32 MiB) with
    its own ``mmap`` and returns it with ``munmap`` when it is freed, so every call
    writes into fresh pages, and the kernel zeroes and maps each one on first touch.
    On the 2-core VM that cost more than the loss itself: sparse cross-entropy,
    ``jit(value_and_grad)``, 8192 x 1000 float32, took 14-19 ms median with default
    malloc and 4.2-4.8 ms with this, for jaxloss, optax and autodiff alike, and its
    samples were bimodal (about 4 to over 20 ms; docs/benchmarks.md). Raising the
    ``mmap`` and trim thresholds keeps freed memory in the heap for the next call, as
    XLA's GPU and TPU clients keep device memory in their caching allocators. A no-op,
    reported as such, off glibc.
    """
    if not sys.platform.startswith("linux"):
        return "system default (not Linux)"
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return "system default (no glibc mallopt)"
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    if mallopt(_M_MMAP_THRESHOLD, limit) != 1 or mallopt(_M_TRIM_THRESHOLD, limit) != 1:
        return "system default (mallopt refused)"
    return f"glibc, freed memory kept (mmap and trim thresholds {limit / 2**30:.0f} GiB)"


def block(x: Any) -> Any:
    return jax.block_until_ready(x)


def compile_timed(fn: Callable[..., Any], *args: Any) -> tuple[Any, float]:
    """``(compiled, seconds)``: ``jax.jit(fn)`` lowered and compiled for ``args``."""
    t0 = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    return compiled, time.perf_counter() - t0


def interleaved_medians(
    fns: dict[str, Callable[..., Any]],
    args: Sequence[Any],
    *,
    repeats: int = 9,
    warmup: int = 2,
    min_seconds: float = 0.0,
    max_repeats: int = 5000,
) -> dict[str, float]:
    """Median wall time (s) of each already-compiled function, timed A B C C B A ...

    Each function runs ``warmup`` times first; then the functions take turns,
    ``repeats`` times each, and more (up to ``max_repeats``) until ``min_seconds``
    have passed, so that short cases get enough samples on a noisy machine. Every
    other round runs them in reverse order, so that none always follows the same one
    (and inherits its caches).
    """
    for f in fns.values():
        for _ in range(warmup):
            block(f(*args))
    times: dict[str, list[float]] = {k: [] for k in fns}
    start = time.perf_counter()
    order = list(fns.items())
    while True:
        for name, f in order:
            t0 = time.perf_counter()
            block(f(*args))
            times[name].append(time.perf_counter() - t0)
        order.reverse()
        n = len(next(iter(times.values())))
        elapsed = time.perf_counter() - start
        if n >= max_repeats or (n >= repeats and elapsed >= min_seconds):
            break
    return {k: statistics.median(v) for k, v in times.items()}


def copy_bandwidth(num_bytes: int = 1 << 29, repeats: int = 7) -> float:
    """Device copy bandwidth in bytes/s: (bytes read + bytes written) / time."""
    n = num_bytes // 4
    x = jax.random.normal(jax.random.key(0), (n,), jnp.float32)
    copy = jax.jit(lambda x: x * 1.0000001)  # a real read and write, not an alias
    t = interleaved_medians({"copy": copy}, [x], repeats=repeats)["copy"]
    return 2 * n * 4 / t


def matmul_flops(n: int = 2048, dtype=jnp.float32, repeats: int = 7) -> float:
    """Matrix-multiply rate in FLOP/s on an n x n x n product."""
    a = jax.random.normal(jax.random.key(1), (n, n), dtype)
    b = jax.random.normal(jax.random.key(2), (n, n), dtype)
    mm = jax.jit(jnp.matmul)
    t = interleaved_medians({"mm": mm}, [a, b], repeats=repeats)["mm"]
    return 2 * n**3 / t


def temp_bytes(compiled: Any) -> int | None:
    """Compiled temporary memory (``memory_analysis().temp_size_in_bytes``)."""
    try:
        analysis = compiled.memory_analysis()
    except Exception:  # some backends have no analysis
        return None
    return None if analysis is None else int(analysis.temp_size_in_bytes)


_ITEMSIZE = {"f64": 8, "f32": 4, "bf16": 2, "f16": 2, "i32": 4, "i64": 8, "bool": 1, "u8": 1}


def residual_bytes(fn: Callable[..., Any], *args: Any) -> tuple[int, list[str]]:
    """Bytes that reverse mode keeps across the forward/backward split, beyond the
    arguments themselves (as ``jax.ad_checkpoint.print_saved_residuals`` lists them)."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        print_saved_residuals(fn, *args)
    total, rows = 0, []
    for line in buf.getvalue().strip().splitlines():
        m = re.match(r"(\w+)\[([\d,]*)\]\s+(.*)", line)
        if not m or m.group(3).startswith("from the argument"):
            continue
        size = 1
        for d in m.group(2).split(","):
            if d:
                size *= int(d)
        total += size * _ITEMSIZE.get(m.group(1), 4)
        rows.append(f"{m.group(1)}[{m.group(2)}]")
    return total, rows


def geomean(values: Sequence[float]) -> float:
    values = [v for v in values if v is not None and v > 0]
    return math.exp(sum(map(math.log, values)) / len(values)) if values else float("nan")


def fmt_bytes(b: int | None) -> str:
    if b is None:
        return "n/a"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(b) < 1024:
            return f"{b:.0f} {unit}" if unit == "B" else f"{b:.1f} {unit}"
        b /= 1024
    return f"{b:.1f} TiB"
