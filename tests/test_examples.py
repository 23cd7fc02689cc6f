"""Every example runs in its smoke mode (a few steps), so none of them rots."""

import importlib.util
import pathlib

import jax
import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def _standard_promotion():
    """The examples use optax's optimizers, which rely on standard dtype promotion."""
    with jax.numpy_dtype_promotion("standard"):
        yield


def test_quickstart_smoke(capsys):
    loss = _load("quickstart").main(["--steps", "5"])
    out = capsys.readouterr().out
    assert "on cpu" in out or "on gpu" in out or "on tpu" in out
    assert loss == pytest.approx(loss) and 0 < loss < 2  # finite and falling from log 5
