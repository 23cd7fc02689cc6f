"""Sphinx configuration for the jaxloss documentation.

Build (warnings are errors; nothing is fetched from the network, no notebook is run):

    .venv/bin/sphinx-build -W -b html docs docs/_build/html

The API reference, ``docs/api/index.rst``, is written at build time from ``dir(jaxloss)``
and the public names of ``jaxloss.info``, ``jaxloss.diagnostics`` and ``jaxloss.testing``,
grouped by the module each function is defined in (``FAMILIES`` below). A function added
to the package appears without editing the docs; one from a module not in ``FAMILIES``
lands in a "More" section named after its module. ``docs/api/`` is ignored by git.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
import types

DOCS = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(DOCS))  # the checkout, when jaxloss is not installed

import jaxloss  # noqa: E402

# -- Project ----------------------------------------------------------------------------

project = "jaxloss"
author = "The jaxloss authors"
copyright = "The jaxloss authors"
release = jaxloss.__version__
version = release

# -- General ----------------------------------------------------------------------------

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
templates_path: list[str] = []

# MyST: ```python blocks are highlighted and tested (tests/test_docs.py); ## headings get
# anchors so pages can link to sections (semantics.md#numerics).
myst_enable_extensions = ["colon_fence", "dollarmath"]
myst_heading_anchors = 3

# autodoc + napoleon: Google-style docstrings, signatures as written in the code.
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
autodoc_typehints = "signature"
autodoc_member_order = "bysource"
autodoc_preserve_defaults = True
autosummary_generate = False  # the summary tables link into the one generated page

# No intersphinx: the build never touches the network.
nitpicky = False

# -- HTML -------------------------------------------------------------------------------

try:
    import furo  # noqa: F401

    html_theme = "furo"
except ImportError:  # pragma: no cover - the docs extra installs furo
    html_theme = "alabaster"
html_title = f"jaxloss {release}"
html_static_path: list[str] = []
html_show_sourcelink = False

# -- The generated API reference --------------------------------------------------------

# module defining the functions -> (section title, one line on the family)
FAMILIES = {
    "jaxloss._cross_entropy": (
        "Softmax cross-entropy",
        "Mutually exclusive classes, one loss per example: soft targets, integer labels, "
        "and the optax drop-in names.",
    ),
    "jaxloss._linear": (
        "Large vocabularies",
        "Fused linear + cross-entropy: the softmax loss of ``hidden @ weight`` without "
        "ever building the ``[N, C]`` logits.",
    ),
    "jaxloss._sigmoid": (
        "Sigmoid and binary cross-entropy",
        "Each element an independent yes/no, one loss per element: on logits or on probabilities.",
    ),
    "jaxloss._focal": (
        "Focal losses",
        "Cross-entropy that down-weights the examples the model already gets right.",
    ),
    "jaxloss._divergence": (
        "Divergences and entropy",
        "KL (forward, reverse, between two sets of logits), Jensen-Shannon and entropy, on logits.",
    ),
    "jaxloss._log_probs": (
        "Losses on log-probabilities",
        "For models that output log-probabilities: PyTorch's ``NLLLoss`` and optax's "
        "divergences on log-probabilities.",
    ),
    "jaxloss._dice": (
        "Dice and segmentation losses",
        "Overlap losses for segmentation masks.",
    ),
    "jaxloss._checks": (
        "Run-time checks",
        "Raise on out-of-range labels, targets and weights instead of returning NaN.",
    ),
}

# public submodules -> (section title, one line)
SUBMODULES = {
    "jaxloss.info": (
        "Information in bits or nats: jaxloss.info",
        "Information quantities on probabilities; ``base=2`` for bits, ``math.e`` "
        "(default) for nats.",
    ),
    "jaxloss.diagnostics": (
        "Diagnostics: jaxloss.diagnostics",
        "Per-example loss histograms and train/test loss comparisons.",
    ),
    "jaxloss.testing": (
        "Testing derivatives: jaxloss.testing",
        "Check custom derivative rules against autodiff and float64 finite differences.",
    ),
}


def _line(obj) -> int:
    try:
        return inspect.unwrap(obj).__code__.co_firstlineno
    except AttributeError:
        try:
            return inspect.getsourcelines(obj)[1]
        except (OSError, TypeError):
            return 1 << 30


def _directive(obj) -> str:
    if inspect.isclass(obj):
        return "autoclass"
    if callable(obj):
        return "autofunction"
    return "autodata"


def _title(text: str, char: str) -> str:
    return f"{text}\n{char * len(text)}\n"


def _entries(module: str, entries: list[tuple[str, object]]) -> list[str]:
    """A summary table of ``entries``, then each object's full docstring."""
    out = [f".. currentmodule:: {module}", "", ".. autosummary::", "   :nosignatures:", ""]
    out += [f"   {name}" for name, _ in entries]
    out.append("")
    for name, obj in entries:
        out.append(f".. {_directive(obj)}:: {name}")
        if inspect.isclass(obj):
            out.append("   :members:")
        out.append("")
    return out


def _sorted(entries: list[tuple[str, object]]) -> list[tuple[str, object]]:
    return sorted(entries, key=lambda e: (_line(e[1]), e[0]))  # source order


def public_api() -> list[tuple[str, str, str, list[tuple[str, object]]]]:
    """The API page's sections: [(title, blurb, module, [(name, object)])].

    The top-level names of ``dir(jaxloss)`` (modules excepted), grouped by the
    ``__module__`` of each object: known families first, in ``FAMILIES`` order, then one
    "More" section per other module; then each public submodule (its ``__all__``, or the
    public names it defines)."""
    groups: dict[str, list[tuple[str, object]]] = {}
    for name in dir(jaxloss):
        obj = getattr(jaxloss, name)
        if name.startswith("_") or isinstance(obj, types.ModuleType):
            continue
        module = getattr(obj, "__module__", None) or "jaxloss"
        groups.setdefault(module, []).append((name, obj))
    sections = []
    for module in [m for m in FAMILIES if m in groups]:
        title, blurb = FAMILIES[module]
        sections.append((title, blurb, "jaxloss", _sorted(groups[module])))
    for module in sorted(m for m in groups if m not in FAMILIES):
        blurb = f"Functions defined in ``{module}``."
        sections.append((f"More: {module}", blurb, "jaxloss", _sorted(groups[module])))
    for module_name, (title, blurb) in SUBMODULES.items():
        module = importlib.import_module(module_name)
        names = getattr(module, "__all__", None)
        if names is None:
            names = [
                n
                for n in dir(module)
                if not n.startswith("_")
                and getattr(getattr(module, n), "__module__", None) == module_name
            ]
        entries = [(n, getattr(module, n)) for n in names]
        sections.append((title, blurb, module_name, _sorted(entries)))
    return sections


def api_page() -> str:
    out = [
        ".. This file is generated by docs/conf.py at every build; do not edit it.",
        "",
        _title("API reference", "="),
        "Every public function of ``jaxloss`` and of its public submodules, grouped by "
        "family; each signature and docstring is read from the code. How the functions "
        "compare with optax, PyTorch and Keras is in :doc:`../coming-from-optax`, "
        ":doc:`../coming-from-pytorch` and :doc:`../coming-from-keras`; the behaviour "
        "contract they share is in :doc:`../semantics`.",
        "",
        ".. module:: jaxloss",
        "",
    ]
    for title, blurb, module, entries in public_api():
        out += [_title(title, "-"), blurb, ""]
        if module != "jaxloss":
            out += [f".. module:: {module}", ""]
        out += _entries(module, entries)
    return "\n".join(out)


API_PAGE = "api/index"


def write_api_page(_app=None) -> None:
    path = os.path.join(DOCS, *API_PAGE.split("/")) + ".rst"
    text = api_page()
    old = None
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            old = f.read()
    if old != text:  # written only on change, and atomically: builds may run side by side
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)


def api_page_outdated(_app, _env, _added, _changed, _removed) -> list[str]:
    """Re-read the API page on every build: the docstrings it shows live in the code,
    which Sphinx does not watch, so an incremental build would keep stale ones."""
    return [API_PAGE]


# -- Code blocks ------------------------------------------------------------------------

# tests/test_docs.py runs every ```python block of docs/*.md except those whose first
# line is this marker (peer code for PyTorch or Keras, which the tests do not install).
# The marker is dropped from the rendered page.
SKIP_MARKER = "# skip-test"


def strip_skip_markers(_app, doctree) -> None:
    from docutils import nodes

    for block in doctree.findall(nodes.literal_block):
        text = block.astext()
        if text.startswith(SKIP_MARKER + "\n"):
            text = text[len(SKIP_MARKER) + 1 :]
            block.rawsource = text
            block.children = []
            block += nodes.Text(text)


def setup(app):
    app.connect("builder-inited", write_api_page)
    app.connect("env-get-outdated", api_page_outdated)
    app.connect("doctree-read", strip_skip_markers)
