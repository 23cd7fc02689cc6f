"""Every example runs in its smoke mode (a few steps), so none of them rots."""

import importlib.util
import pathlib
import sys

import jax
import numpy as np
import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"


def _load(name):
    sys.path.insert(0, str(EXAMPLES))
    try:
        spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(EXAMPLES))
    return module


@pytest.fixture(autouse=True)
def _standard_promotion():
    """The examples use optax's and flax's code, which relies on standard promotion."""
    with jax.numpy_dtype_promotion("standard"):
        yield


def _backend_line(out):
    assert f"on {jax.default_backend()}:" in out, out


def test_quickstart(capsys, tmp_path):
    plot = tmp_path / "hist.png"
    result = _load("quickstart").main(["--steps", "5", "--plot", str(plot)])
    _backend_line(capsys.readouterr().out)
    assert 0 < result["final_loss"] < 3 and plot.read_bytes()[:4] == b"\x89PNG"
    assert 0 <= result["summary"].ks_statistic <= 1


def test_imbalanced(capsys):
    result = _load("imbalanced").main(["--steps", "3"])
    _backend_line(capsys.readouterr().out)
    assert set(result) == {"plain", "class_weights", "focal"}


def test_logistic_regression(capsys):
    result = _load("logistic_regression").main(["--steps", "5"])
    _backend_line(capsys.readouterr().out)
    assert result["train_loss"] < 0.6932  # below log 2: it learned something


def test_multilabel(capsys):
    result = _load("multilabel").main(["--steps", "3"])
    _backend_line(capsys.readouterr().out)
    assert set(result) == {"plain", "pos_weight"}


def test_distillation(capsys):
    result = _load("distillation").main(["--steps", "3"])
    _backend_line(capsys.readouterr().out)
    assert set(result) == {"teacher", "student_alone", "student_distilled"}


def test_ce_vs_mse(capsys, tmp_path):
    plot = tmp_path / "ce.png"
    result = _load("ce_vs_mse").main(["--steps", "3", "--plot", str(plot)])
    out = capsys.readouterr().out
    _backend_line(out)
    assert "CE gradient -1.0000" in out  # the confidently wrong end: CE still pushes
    assert plot.read_bytes()[:4] == b"\x89PNG" and set(result) == {"cross_entropy", "squared_error"}


def test_language_model(capsys):
    pytest.importorskip("tokenizers")
    result = _load("language_model").main(
        [
            "--steps",
            "2",
            "--corpus-mb",
            "0.05",
            "--vocab-size",
            "400",
            "--dim",
            "32",
            "--layers",
            "1",
            "--heads",
            "2",
            "--seq-len",
            "16",
            "--batch",
            "4",
        ]
    )
    out = capsys.readouterr().out
    _backend_line(out)
    assert "compiled temporaries of a gradient step" in out
    assert np.isfinite(result["test_loss"]) and result["vocab"] > 256
