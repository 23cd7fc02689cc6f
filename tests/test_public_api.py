"""The public names, their signatures, and the package metadata."""

import inspect
import pathlib

import jaxloss

PUBLIC = {
    "categorical_cross_entropy",
    "sparse_categorical_cross_entropy",
    "softmax_cross_entropy",
    "softmax_cross_entropy_with_integer_labels",
    "sigmoid_cross_entropy",
    "sigmoid_binary_cross_entropy",
    "binary_cross_entropy",
    "sigmoid_focal_loss",
    "softmax_focal_loss",
    "kl_divergence",
    "reverse_kl_divergence",
    "kl_divergence_with_logits",
    "js_divergence",
    "entropy",
    "linear_cross_entropy",
    "nll_loss",
    "categorical_focal_loss",
    "safe_softmax_cross_entropy",
    "poly_loss_cross_entropy",
    "smooth_labels",
    "kl_divergence_with_log_targets",
    "generalized_kl_divergence",
    "convex_kl_divergence",
    "dice_loss",
    "binary_dice_loss",
    "multiclass_generalized_dice_loss",
    "checked",
    "info",
    "diagnostics",
    "testing",
}
INFO = {"information", "entropy", "cross_entropy", "kl_divergence", "js_divergence"}


def test_public_names():
    names = {n for n in dir(jaxloss) if not n.startswith("_")}
    assert names == PUBLIC
    assert jaxloss.testing.check_derivatives.__module__ == "jaxloss.testing"


def test_every_public_function_has_a_docstring_with_an_example():
    for name in PUBLIC - {"testing", "info", "diagnostics"}:
        doc = getattr(jaxloss, name).__doc__
        assert doc, name  # every public function has a docstring
        if name != "checked":
            assert ">>>" in doc and ".. math::" in doc, name
    assert ">>>" in jaxloss.testing.check_derivatives.__doc__
    assert set(jaxloss.info.__all__) == INFO
    for name in INFO:
        doc = getattr(jaxloss.info, name).__doc__
        assert ">>>" in doc and ".. math::" in doc, name


def _params(f):
    return {n: (p.kind, p.default) for n, p in inspect.signature(f).parameters.items()}


def test_signatures():
    kw = inspect.Parameter.KEYWORD_ONLY
    pos = inspect.Parameter.POSITIONAL_OR_KEYWORD
    empty = inspect.Parameter.empty
    assert _params(jaxloss.categorical_cross_entropy) == {
        "logits": (pos, empty),
        "targets": (pos, empty),
        "axis": (kw, -1),
        "where": (kw, None),
        "sample_weight": (kw, None),
        "class_weights": (kw, None),
        "label_smoothing": (kw, 0.0),
        "z_loss": (kw, 0.0),
        "reduction": (kw, "none"),
        "residuals": (kw, "auto"),
        "axis_name": (kw, None),
        "return_z_loss": (kw, False),
    }
    assert _params(jaxloss.sparse_categorical_cross_entropy) == {
        "logits": (pos, empty),
        "labels": (pos, empty),
        "axis": (kw, -1),
        "where": (kw, None),
        "sample_weight": (kw, None),
        "ignore_index": (kw, None),
        "class_weights": (kw, None),
        "label_smoothing": (kw, 0.0),
        "z_loss": (kw, 0.0),
        "reduction": (kw, "none"),
        "residuals": (kw, "auto"),
        "axis_name": (kw, None),
        "return_z_loss": (kw, False),
    }
    # The optax drop-ins take optax's arguments, positionally too.
    for name in ("softmax_cross_entropy", "softmax_cross_entropy_with_integer_labels"):
        assert _params(getattr(jaxloss, name)) == {
            "logits": (pos, empty),
            "labels": (pos, empty),
            "axis": (pos, -1),
            "where": (pos, None),
        }


def test_version_and_typed_marker():
    assert jaxloss.__version__ and jaxloss.__version__ != "0.0.0+unknown"
    assert (pathlib.Path(jaxloss.__file__).parent / "py.typed").exists()


def test_issue_3_signatures():
    kw = inspect.Parameter.KEYWORD_ONLY
    pos = inspect.Parameter.POSITIONAL_OR_KEYWORD
    empty = inspect.Parameter.empty
    assert _params(jaxloss.sigmoid_cross_entropy) == {
        "logits": (pos, empty),
        "labels": (pos, empty),
        "pos_weight": (kw, None),
        "where": (kw, None),
        "sample_weight": (kw, None),
        "label_smoothing": (kw, 0.0),
        "reduction": (kw, "none"),
    }
    assert _params(jaxloss.binary_cross_entropy) == {
        "probs": (pos, empty),
        "labels": (pos, empty),
        "where": (kw, None),
        "sample_weight": (kw, None),
        "label_smoothing": (kw, 0.0),
        "reduction": (kw, "none"),
    }
    assert _params(jaxloss.sigmoid_focal_loss) == {
        "logits": (pos, empty),
        "labels": (pos, empty),
        "alpha": (kw, None),
        "gamma": (kw, 2.0),
        "where": (kw, None),
        "sample_weight": (kw, None),
        "label_smoothing": (kw, 0.0),
        "reduction": (kw, "none"),
    }
    assert _params(jaxloss.softmax_focal_loss) == {
        "logits": (pos, empty),
        "labels": (pos, empty),
        "alpha": (kw, None),
        "gamma": (kw, 2.0),
        "axis": (kw, -1),
        "where": (kw, None),
        "sample_weight": (kw, None),
        "ignore_index": (kw, None),
        "label_smoothing": (kw, 0.0),
        "reduction": (kw, "none"),
        "axis_name": (kw, None),
    }
    for name in ("kl_divergence", "reverse_kl_divergence", "js_divergence"):
        extra = {"residuals": (kw, "auto")} if name == "kl_divergence" else {}
        extra["axis_name"] = (kw, None)
        assert _params(getattr(jaxloss, name)) == {
            "logits": (pos, empty),
            "targets": (pos, empty),
            "axis": (kw, -1),
            "where": (kw, None),
            "sample_weight": (kw, None),
            "reduction": (kw, "none"),
            **extra,
        }, name
    assert _params(jaxloss.kl_divergence_with_logits) == {
        "logits": (pos, empty),
        "target_logits": (pos, empty),
        "temperature": (kw, 1.0),
        "axis": (kw, -1),
        "where": (kw, None),
        "sample_weight": (kw, None),
        "reduction": (kw, "none"),
        "axis_name": (kw, None),
    }
    assert _params(jaxloss.entropy) == {
        "logits": (pos, empty),
        "axis": (kw, -1),
        "where": (kw, None),
        "sample_weight": (kw, None),
        "reduction": (kw, "none"),
        "axis_name": (kw, None),
    }
    assert list(inspect.signature(jaxloss.sigmoid_binary_cross_entropy).parameters) == [
        "logits",
        "labels",
    ]
    assert list(inspect.signature(jaxloss.info.cross_entropy).parameters) == [
        "p",
        "q",
        "base",
        "axis",
    ]
    assert list(inspect.signature(jaxloss.info.information).parameters) == ["p", "base"]


def test_diagnostics_api():
    d = jaxloss.diagnostics
    assert set(d.__all__) == {
        "loss_histogram",
        "compare_loss_distributions",
        "LossComparison",
        "plot_loss_histograms",
    }
    assert _params(d.loss_histogram) == {
        "losses": (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.empty),
        "bins": (inspect.Parameter.KEYWORD_ONLY, 50),
        "range": (inspect.Parameter.KEYWORD_ONLY, None),
        "where": (inspect.Parameter.KEYWORD_ONLY, None),
    }
    assert "ks_statistic" in {f.name for f in __import__("dataclasses").fields(d.LossComparison)}
    assert list(inspect.signature(d.plot_loss_histograms).parameters)[:2] == ["losses", "path"]
    for name in ("loss_histogram", "compare_loss_distributions"):
        assert ">>>" in getattr(d, name).__doc__


OPTAX_NAMES = [
    "softmax_cross_entropy",
    "softmax_cross_entropy_with_integer_labels",
    "safe_softmax_cross_entropy",
    "poly_loss_cross_entropy",
    "sigmoid_binary_cross_entropy",
    "sigmoid_focal_loss",
    "kl_divergence_with_log_targets",
    "generalized_kl_divergence",
    "convex_kl_divergence",
    "smooth_labels",
    "dice_loss",
    "binary_dice_loss",
    "multiclass_generalized_dice_loss",
]


def test_optax_names_take_optax_arguments():
    """Changing the import is enough: every optax parameter exists here with the same
    kind and default (jaxloss may add keyword-only options after them)."""
    import optax

    for name in OPTAX_NAMES:
        theirs = _params(getattr(optax.losses, name))
        ours = _params(getattr(jaxloss, name))
        for param, (kind, default) in theirs.items():
            assert param in ours, (name, param)
            assert ours[param][0] == kind, (name, param)
            assert ours[param][1] == default, (name, param, ours[param][1], default)
        extra = [p for p in ours if p not in theirs]
        assert all(ours[p][0] == inspect.Parameter.KEYWORD_ONLY for p in extra), (name, extra)
