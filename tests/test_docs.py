"""The documentation site builds, every public name has a page, every internal link resolves."""

import importlib
import os
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

for _module in ("sphinx", "myst_parser", "numpydoc", "sphinx_gallery", "pydata_sphinx_theme"):
    pytest.importorskip(_module, reason="the [docs] extra builds the site")

ROOT = Path(__file__).resolve().parents[1]
# The modules whose __all__ is the public API (the subpackages' estimators are at the root).
API_MODULES = [
    "sktransfer",
    "sktransfer.backbones",
    "sktransfer.data",
    "sktransfer.inspection",
    "sktransfer.monitoring",
    "sktransfer.adaptation",
]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "SKTRANSFER_DOCS_RUN_EXAMPLES": "0"}  # the examples run in the full build
    command = [sys.executable, "-m", "sphinx", "-b", "html", "-q", "-E", "-j", "1"]
    command += ["-d", str(out / ".doctrees"), str(ROOT / "docs"), str(out)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return out, result.stderr


def test_the_site_builds_without_warnings(site):
    _, warnings = site
    assert "WARNING" not in warnings and "ERROR" not in warnings, warnings[-3000:]


@pytest.mark.parametrize("module", API_MODULES)
def test_every_public_name_has_a_page(site, module):
    out, _ = site
    exported = importlib.import_module(module)
    missing = []
    for name in (n for n in exported.__all__ if not n.startswith("__")):
        # A name exported by several modules (the root re-exports) needs one page, under any.
        homes = [
            m
            for m in API_MODULES
            if getattr(importlib.import_module(m), name, None) is getattr(exported, name)
        ]
        if not any((out / "generated" / f"{home}.{name}.html").is_file() for home in homes):
            missing.append(name)
    assert not missing, f"{module}: no API page for {missing}; list them in docs/api.md"


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs, self.ids = [], set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        if tag in ("a", "link") and attrs.get("href"):
            self.hrefs.append(attrs["href"])
        if tag in ("img", "script") and attrs.get("src"):
            self.hrefs.append(attrs["src"])


def test_every_internal_link_resolves(site):
    out, _ = site
    pages = {}
    for page in out.rglob("*.html"):
        if "_static" in page.parts:  # the theme's templates, not pages
            continue
        parser = _Links()
        parser.feed(page.read_text(encoding="utf-8"))
        pages[page.resolve()] = parser
    broken = []
    for page, parser in pages.items():
        for href in parser.hrefs:
            parts = urlsplit(href)
            if parts.scheme or parts.netloc or href.startswith(("mailto:", "javascript:")):
                continue
            target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                broken.append(f"{page.relative_to(out)} -> {href}")
            elif parts.fragment and target in pages and unquote(parts.fragment) not in pages[target].ids:
                broken.append(f"{page.relative_to(out)} -> {href} (no such anchor)")
    assert not broken, "\n".join(broken[:20])


def test_the_guide_and_the_examples_are_on_the_site(site):
    out, _ = site
    for page in ("index", "scaling", "finetuning", "api", "auto_examples/index", "auto_examples/quickstart"):
        assert (out / f"{page}.html").is_file(), page
    assert "sktransfer.ImageClassifier" in (out / "api.html").read_text(encoding="utf-8")
