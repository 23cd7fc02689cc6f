"""The benchmark suite's --quick mode runs (tiny shapes), so the suite cannot rot."""

import importlib.util
import json
import pathlib
import platform
import sys

BENCH = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name, file):
    spec = importlib.util.spec_from_file_location(name, BENCH / file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_quick_benchmark_suite(tmp_path):
    run = _load("bench_run", "run.py")
    report = run.main(["--quick", "--out", str(tmp_path), "--repeats", "1"])
    names = {r["loss"] for r in report["results"]}
    assert {"sparse_categorical_cross_entropy", "categorical_cross_entropy"} <= names
    for r in report["results"]:
        assert r["median_s"]["jaxloss"] > 0
        assert r["value_error"] < 1e-3
        if r["mode"] == "fwd+bwd":
            # never more kept between the passes than optax keeps (O(N) beyond the
            # inputs with residuals="lse"; tests/test_residuals.py checks that)
            res = r["residual_bytes"]
            assert 0 <= res["jaxloss"] <= res["optax"], r
    saved = json.loads((tmp_path / "cpu-quick.json").read_text())
    if sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc":
        assert saved["environment"]["malloc"].startswith("glibc, freed memory kept")
    assert saved["results"] and (tmp_path / "cpu-quick.md").read_text().startswith("###")


def test_budget_leaves_out_the_cells_after_it(tmp_path):
    """--budget 0: no cell starts (the setup alone takes longer), every cell is listed
    as left out, and the written report says so and that the run finished."""
    run = _load("bench_run", "run.py")
    report = run.main(
        ["--quick", "--out", str(tmp_path), "--repeats", "1", "--losses", "sparse,sigmoid"]
        + ["--budget", "0"]
    )
    assert report["results"] == [] and report["per_example"] == []
    assert report["left_out"][0] == "sparse 16x10 float32 fwd+bwd"
    assert report["left_out"][-1] == "training step 16x8x32 float32"
    saved = json.loads((tmp_path / "cpu-quick.json").read_text())
    assert saved["left_out"] == report["left_out"] and saved["complete"]
    assert "Not measured (past `--budget`" in (tmp_path / "cpu-quick.md").read_text()


def test_quick_linear_benchmark(tmp_path):
    linear = _load("bench_linear", "linear.py")
    report = linear.main(
        ["--quick", "--out", str(tmp_path), "--repeats", "1", "--min-seconds", "0"]
    )
    (step,) = [r for r in report["steps"] if r["dtype"] == "float32"]
    assert step["value_error"] < 1e-3 and step["median_s"]["fused"] > 0
    assert (tmp_path / "linear-cpu-quick.md").read_text().startswith("###")
    sweep = report["chunk_sweep"]
    # the default chunk (every token of this tiny batch) is swept too
    assert [r["tokens"] for r in sweep["chunks"]] == [8, 16, 32, 64] and sweep["default"] == 64
    assert (
        sweep["optax_s"] > 0
        and "vs unfused (optax)" in (tmp_path / "linear-cpu-quick.md").read_text()
    )


def test_collectives_script_lists_only_per_token_numbers_and_dh():
    """benchmarks/collectives.py (the input of docs/scaling.md), at a tiny shape on 4
    forced CPU devices in a subprocess: the step's collectives are per-token numbers
    and the one [N, D] all-reduce of dh."""
    import os
    import subprocess

    env = dict(os.environ, JAX_PLATFORMS="cpu", JAX_DISABLE_MOST_OPTIMIZATIONS="1")
    args = ["--tokens", "64", "--dim", "16", "--classes", "1000", "--devices", "4"]
    done = subprocess.run(
        [sys.executable, str(BENCH / "collectives.py"), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [ln for ln in done.stdout.splitlines() if "all-reduce" in ln]
    assert any("f32[64,16]" in ln for ln in lines), done.stdout  # dh, once
    assert all("250]" not in ln and "1000]" not in ln for ln in lines), done.stdout


def test_compare_against_a_git_revision(capsys):
    """benchmarks/compare.py imports jaxloss as of a git revision beside the checkout's
    and times both (here against HEAD, one tiny cell per mode)."""
    import shutil
    import subprocess

    import pytest

    if (
        shutil.which("git") is None
        or subprocess.run(["git", "rev-parse", "HEAD"], cwd=BENCH, capture_output=True).returncode
    ):
        pytest.skip("not a git checkout")
    spec = importlib.util.spec_from_file_location("bench_compare", BENCH / "compare.py")
    compare = importlib.util.module_from_spec(spec)
    sys.modules["bench_compare"] = compare
    spec.loader.exec_module(compare)
    results = compare.main(
        [
            "--losses",
            "kl",
            "--shapes",
            "8x16",
            "--modes",
            "fwd,fwd+bwd,per-example",
            "--rounds",
            "1",
            "--min-seconds",
            "0",
        ]
    )
    assert [key[-1] for key, _ in results] == ["fwd", "fwd+bwd", "per-example"]
    for _, (row,) in results:
        assert set(row) == {"new", "base", "optax"} and min(row.values()) > 0
    assert "new/base" in capsys.readouterr().out
