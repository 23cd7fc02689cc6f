"""The documentation site: it builds with warnings as errors, its API reference lists
every public function, and every Python code block in ``docs/*.md`` runs.

Code blocks are MyST fences, ```` ```python ```` or ```` ```{code-block} python ````. A
page's blocks run in order in one namespace, so a block may use what an earlier block of
the same page defined. A block whose first line is ``# skip-test`` is not run (peer code
for libraries the test suite does not install, such as PyTorch and Keras); the build
drops that marker line from the rendered page.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import pathlib
import re
import subprocess
import sys
import types

import jax
import pytest

import jaxloss

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SKIP_MARKER = "# skip-test"
SUBMODULES = (jaxloss.info, jaxloss.diagnostics, jaxloss.testing)

_FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})\s*(?P<info>.*)$")
_PYTHON = re.compile(r"^(?:\{(?:code-block|code|sourcecode)\}\s+)?(?:python3?|py)(?:\s|$)")


def python_blocks(text: str) -> list[tuple[int, str]]:
    """The ``(line number, source)`` of every Python code block of a MyST page, in order.

    Fences of other languages are skipped whole; other directives (``{note}``, ...) are
    scanned inside, since they may hold code blocks."""
    lines = text.splitlines()
    blocks = []
    containers: list[str] = []  # the open fences of directives such as {note}
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, info = m.group("fence"), m.group("info").strip()
        top = containers[-1] if containers else None
        if not info and top and fence[0] == top[0] and len(fence) >= len(top):
            containers.pop()  # the end of a directive
            i += 1
            continue
        if info.startswith("{") and not re.match(r"\{(code-block|code|sourcecode)\}", info):
            containers.append(fence)  # a directive: look inside it
            i += 1
            continue
        start = i + 1
        j = start
        closer = re.compile(rf"^\s*{re.escape(fence[0])}{{{len(fence)},}}\s*$")
        while j < len(lines) and not closer.match(lines[j]):
            j += 1
        body = lines[start:j]
        if _PYTHON.match(info):
            if info.startswith("{"):  # drop the directive's options (":caption: ...")
                while body and re.match(r"^\s*:[\w-]+:", body[0]):
                    body = body[1:]
            indent = len(m.group("indent"))
            source = "\n".join(line[indent:] for line in body)
            blocks.append((start + 1, source))
        i = j + 1
    return blocks


def _pages_with_code() -> list[pathlib.Path]:
    return sorted(p for p in DOCS.glob("*.md") if python_blocks(p.read_text(encoding="utf-8")))


def test_the_block_parser():
    page = "\n".join(
        [
            "# Title",
            "```python",
            "a = 1",
            "```",
            "```bash",
            "echo no",
            "```",
            "````{note}",
            "```{code-block} python",
            ":caption: inside a note",
            "b = a + 1",
            "```",
            "````",
            "```text",
            "c = 3",
            "```",
            "```python",
            "# skip-test",
            "import torch",
            "```",
        ]
    )
    blocks = [source for _, source in python_blocks(page)]
    assert blocks == ["a = 1", "b = a + 1", "# skip-test\nimport torch"]


@pytest.mark.parametrize("page", _pages_with_code(), ids=lambda p: p.name)
def test_code_blocks_run(page):
    """Each page's ```python blocks, in order, in one fresh namespace, as a user runs
    them: JAX's default ("standard") dtype promotion, output captured."""
    namespace = {"__name__": f"docs_{page.stem.replace('-', '_')}"}
    for line, source in python_blocks(page.read_text(encoding="utf-8")):
        if source.lstrip().startswith(SKIP_MARKER):
            continue
        code = compile(source, f"{page.relative_to(ROOT)}:{line}", "exec")
        with jax.numpy_dtype_promotion("standard"), contextlib.redirect_stdout(io.StringIO()):
            exec(code, namespace)  # noqa: S102 - the docs' own code


def _public_names() -> dict[str, list[str]]:
    names = {
        "jaxloss": [
            n
            for n in dir(jaxloss)
            if not n.startswith("_") and not isinstance(getattr(jaxloss, n), types.ModuleType)
        ]
    }
    for module in SUBMODULES:
        names[module.__name__] = list(module.__all__)
    return names


def test_site_builds_and_lists_every_public_function(tmp_path):
    for needed in ("sphinx", "myst_parser", "furo"):
        if importlib.util.find_spec(needed) is None:
            pytest.fail(f"{needed} is missing: pip install -e '.[docs]' (the test extra has it)")
    out = tmp_path / "html"
    command = [
        sys.executable,
        "-m",
        "sphinx",
        "-W",
        "--keep-going",
        "-j",
        "1",
        "-q",
        "-b",
        "html",
        str(DOCS),
        str(out),
    ]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"sphinx-build failed:\n{result.stdout}\n{result.stderr}"

    api = (out / "api" / "index.html").read_text(encoding="utf-8")
    missing = [
        f"{module}.{name}"
        for module, names in _public_names().items()
        for name in names
        if f'id="{module}.{name}"' not in api
    ]
    assert not missing, f"not documented on the API page: {missing}"
    for page in ("index", "tutorial", "numerics", "semantics", "performance", "benchmarks"):
        assert (out / f"{page}.html").exists()
    for peer in ("optax", "pytorch", "keras"):
        assert (out / f"coming-from-{peer}.html").exists()
    assert SKIP_MARKER not in "".join(p.read_text(encoding="utf-8") for p in out.glob("*.html"))
