"""Every example runs in its smoke mode (a few steps), so none of them rots; their
``--help`` is complete, their images go under ``outputs/`` by default, and their
progress bars stay out of logs."""

import importlib.util
import os
import pathlib
import re
import subprocess
import sys

import jax
import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SCRIPTS = sorted(p.stem for p in EXAMPLES.glob("*.py") if not p.name.startswith("_"))
IMAGES = {"quickstart": "loss_histogram.png", "ce_vs_mse": "ce_vs_mse.png"}  # the default names


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
    plot = tmp_path / "figures" / "hist.png"  # the folder does not exist yet
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


def test_language_model_mesh():
    """On a 2 x 4 mesh of forced CPU devices (a subprocess: this one has one device),
    the vocabulary-parallel head trains and moves no more bytes between devices than
    the compiler's unfused head, with fewer temporaries."""
    pytest.importorskip("tokenizers")
    args = "--steps 2 --corpus-mb 0.05 --vocab-size 400 --dim 32 --layers 1 --heads 2"
    args += " --seq-len 16 --batch 4"
    env = dict(os.environ, JAX_DISABLE_MOST_OPTIMIZATIONS="1")
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "language_model_mesh.py"), *args.split()],
        capture_output=True, text=True, env=env, timeout=600, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "mesh 2 x 4 (data x model)" in out and "held-out loss" in out, out
    rows = {}
    for line in out.splitlines():
        match = re.match(r"\s+(.*?)\s+([\d.]+) [KM]iB\s+([\d.]+) [KM]iB$", line)
        if match:
            rows[match.group(1)] = (float(match.group(2)), float(match.group(3)))
    dw, dh = rows["dW [D, C/4], summed over data"], rows["dh [N/2, D], summed over model"]
    assert dw[0] == dw[1] > 0 and dh[0] == dh[1] > 0, rows  # what every head must move
    fused, unfused = rows["one training step, all collective bytes"]
    assert 0 < fused <= unfused, rows
    head_temps = rows["the head alone, compiled temporaries"]
    assert 0 < head_temps[0] < head_temps[1], rows  # the fused head's are fewer
    assert "the fused head holds a chunk of them" in out


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


def _option_helps(text):
    """Each option's help text in ``--help`` output, whitespace normalized: {"--steps": ...}."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line in ("options:", "optional arguments:"))
    helps, name = {}, None
    for line in lines[start + 1 :]:
        if not line.strip():
            break  # the end of the options
        if line.startswith("  -"):  # "  --steps STEPS   Help..." or "  --long-name LONG_NAME"
            invocation, _, text = line.strip().partition("  ")
            name = invocation.split(",")[-1].split()[0]
            helps[name] = text.strip()
        else:  # a continuation of the help text
            helps[name] = f"{helps[name]} {line.strip()}".strip()
    return helps


def test_scripts_are_found():
    assert len(SCRIPTS) >= 7 and set(IMAGES) <= set(SCRIPTS)


@pytest.mark.parametrize("name", SCRIPTS)
def test_help_is_complete(name, capsys):
    module = _load(name)
    with pytest.raises(SystemExit) as exit_info:
        module.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    flat = " ".join(out.split())
    # the description is the docstring's first paragraph, whole
    first_paragraph = module.__doc__.strip().split("\n\n")[0]
    assert " ".join(first_paragraph.split()) in flat
    helps = _option_helps(out)
    assert {"--help", "--steps", "--seed"} <= set(helps), helps
    assert helps.pop("--help") == "Show this help message and exit."
    for option, text in helps.items():
        assert text.endswith((".", ")")), (option, text)
        # a full sentence, then the default
        sentence, default = re.fullmatch(r"(.*) \(default: (.*)\)", text).groups()
        assert re.fullmatch(r"[A-Z].*\.", sentence), (option, text)
        assert default, (option, text)


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_default_image_is_under_outputs(name, capsys):
    module = _load(name)
    assert pathlib.PurePath(module.DEFAULT_PLOT) == pathlib.PurePath("outputs", IMAGES[name])
    with pytest.raises(SystemExit):
        module.main(["--help"])
    assert f"(default: {module.DEFAULT_PLOT})" in " ".join(capsys.readouterr().out.split())


def test_ce_vs_mse_writes_under_outputs_by_default(capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    _load("ce_vs_mse").main(["--steps", "1"])
    assert f"wrote {pathlib.PurePath('outputs', 'ce_vs_mse.png')}" in capsys.readouterr().out
    assert (tmp_path / "outputs" / "ce_vs_mse.png").read_bytes()[:4] == b"\x89PNG"
    assert [p.name for p in tmp_path.iterdir()] == ["outputs"]  # nothing else in the cwd


def test_no_progress_bar_in_piped_output(tmp_path):
    """Where stdout and stderr are pipes (a log), tqdm writes no carriage returns."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path, "JAX_PLATFORMS": "cpu"}
    env["JAX_DISABLE_MOST_OPTIMIZATIONS"] = "1"  # the suite's cheaper compilation
    run = subprocess.run(
        [sys.executable, str(EXAMPLES / "logistic_regression.py"), "--steps", "3"],
        capture_output=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr.decode(errors="replace")
    assert b"step    2  log loss" in run.stdout and b"accuracy: train" in run.stdout
    assert b"\r" not in run.stdout + run.stderr, run.stderr.decode(errors="replace")
    assert not any(tmp_path.iterdir())  # and writes nothing into the working directory


def test_segmentation(capsys):
    result = _load("segmentation").main(["--steps", "3", "--plot", ""])
    out = capsys.readouterr().out
    _backend_line(out)
    assert "(the same from channels-first logits)" in out  # axis=1 gave the same losses
    assert np.isfinite(result["final_loss"]) and 0 < result["test_dice_loss"] <= 1
    assert 0 <= result["pixel_accuracy"] <= 1 and result["iou"].shape == (11,)
