"""The rendered-book checker (tests/browser/check_rendered_book.py) catches what it claims to.

Its rules (``judge``) are tested on hand-made page facts, without a browser. The whole checker
(server, headless Chromium, facts, screenshots) runs on a tiny hand-made site with one defect per
page when Chromium, chromedriver and Selenium are installed, and is skipped otherwise.
"""
from __future__ import annotations

import importlib.util
import io
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
BASE = "http://127.0.0.1:8000/"
COLAB = "https://colab.research.google.com/github/anolearn/anolearn/blob/main/"


def _load_checker():
    spec = importlib.util.spec_from_file_location("check_rendered_book", ROOT / "tests/browser/check_rendered_book.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


checker = _load_checker()


# ----------------------------------------------------------------------------------------------
# judge() on hand-made facts
# ----------------------------------------------------------------------------------------------


@pytest.fixture
def site(tmp_path: Path):
    """A build with two pages and a notebook page, and the repository holding that notebook."""
    book, repo = tmp_path / "html", tmp_path / "repo"
    (book / "book").mkdir(parents=True)
    (book / "index.html").write_text('<html><body><h1 id="top">Top</h1><a name="old-style"></a></body></html>')
    (book / "book" / "index.html").write_text("<html><body><p id='intro'>x</p></body></html>")
    (book / "book" / "nb.html").write_text("<html><body><section id='summary'>x</section></body></html>")
    (book / "_sources" / "book").mkdir(parents=True)
    (book / "_sources" / "book" / "nb.ipynb").write_text("{}")
    (repo / "book").mkdir(parents=True)
    (repo / "book" / "nb.ipynb").write_text("{}")
    return checker.Site(book, BASE, repo, COLAB)


def facts(**changes):
    """The facts of a page with nothing wrong, then ``changes``."""
    clean = {
        "title": "page",
        "images": [{"src": "_images/a.png", "url": BASE + "_images/a.png", "complete": True, "naturalWidth": 64}],
        "links": [{"href": "#top", "url": BASE + "index.html#top"}],
        "tracebacks": [],
        "stderr": [],
        "outputs": ["accuracy 0.93"],
        "math": {"formulas": 2, "typeset": 2, "untypeset": [], "containers": 2, "errors": [], "status": "ok"},
        "widgets": {"views": 1, "drawn": 1, "status": "ok"},
        "scripts": [BASE + "_static/mathjax/tex-chtml.js"],
        "stylesheets": [BASE + "_static/styles/theme.css"],
        "resources": [{"url": BASE + "_static/mathjax/tex-chtml.js", "type": "script", "status": 200}],
        "fontsFailed": [],
        "console": [],
    }
    clean.update(changes)
    return clean


def checks(problems):
    return sorted({check for check, _ in problems})


def test_a_clean_page_has_no_problem(site):
    assert checker.judge("index.html", facts(), site) == []


def test_an_image_that_did_not_load(site):
    broken = {"src": "_images/b.png", "url": BASE + "_images/b.png", "complete": True, "naturalWidth": 0}
    problems = checker.judge("index.html", facts(images=[broken]), site)
    assert checks(problems) == ["images"] and "_images/b.png" in problems[0][1]
    pending = dict(broken, complete=False, naturalWidth=10)
    assert checks(checker.judge("index.html", facts(images=[pending]), site)) == ["images"]


def test_error_outputs_but_not_warnings(site):
    assert checks(checker.judge("index.html", facts(tracebacks=["ValueError  Traceback"]), site)) == ["outputs"]
    stderr = ["  File 'x.py', line 3\nZeroDivisionError: division by zero"]
    assert checks(checker.judge("index.html", facts(stderr=stderr), site)) == ["outputs"]
    printed = ["Traceback (most recent call last):\n  ...\nKeyError: 'a'"]
    assert checks(checker.judge("index.html", facts(outputs=printed), site)) == ["outputs"]
    warning = ["/x.py:3: UserWarning: the grid is coarse\n  warnings.warn(", "100%|##########| 7/7"]
    assert checker.judge("index.html", facts(stderr=warning, outputs=warning), site) == []


@pytest.mark.parametrize(
    "href, url, why",
    [
        ("nowhere.html", BASE + "nowhere.html", "nowhere.html does not exist"),
        ("#nope", BASE + "index.html#nope", "#nope is not on index.html"),
        ("book/nb.html#summ", BASE + "book/nb.html#summ", "#summ is not on book/nb.html"),
    ],
)
def test_a_broken_internal_link(site, href, url, why):
    problems = checker.judge("index.html", facts(links=[{"href": href, "url": url}]), site)
    assert problems == [("links", f"broken link {href!r}: {why}")]


def test_links_that_resolve(site):
    good = [
        ("#top", BASE + "index.html#top"),
        ("#old-style", BASE + "index.html#old-style"),
        ("book/", BASE + "book/"),  # a folder means its index.html
        ("book/index.html#intro", BASE + "book/index.html#intro"),
        ("book/nb.html#summary", BASE + "book/nb.html#summary"),
        ("#", BASE + "index.html#"),
        ("_sources/book/nb.ipynb", BASE + "_sources/book/nb.ipynb"),
        ("https://github.com/anolearn/anolearn", "https://github.com/anolearn/anolearn"),  # not checked
        ("mailto:a@b.c", "mailto:a@b.c"),
    ]
    links = [{"href": h, "url": u} for h, u in good]
    assert checker.judge("index.html", facts(links=links), site) == []


def test_math_that_mathjax_did_not_typeset(site):
    missing = dict(facts()["math"], status="missing")
    assert checks(checker.judge("index.html", facts(math=missing), site)) == ["math"]
    raw = dict(facts()["math"], typeset=1, untypeset=[r"\(x^2\)"])
    assert checks(checker.judge("index.html", facts(math=raw), site)) == ["math"]
    error = dict(facts()["math"], errors=["Missing close brace"])
    assert checks(checker.judge("index.html", facts(math=error), site)) == ["math"]
    no_math = {"formulas": 0, "typeset": 0, "untypeset": [], "containers": 0, "errors": [], "status": "none"}
    assert checker.judge("index.html", facts(math=no_math), site) == []


def test_saved_widgets_that_were_not_drawn(site):
    undrawn = {"views": 2, "drawn": 1, "status": "missing"}
    assert checks(checker.judge("index.html", facts(widgets=undrawn), site)) == ["widgets"]


def test_anything_from_another_host(site):
    cdn = "https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js"
    for changes in (
        {"scripts": [cdn]},
        {"stylesheets": ["https://fonts.example.org/a.css"]},
        {"resources": [{"url": "https://fonts.example.org/a.woff2", "type": "css", "status": 0}]},
        {"console": [cdn + " - Failed to load resource: net::ERR_NAME_NOT_RESOLVED"]},
    ):
        assert checks(checker.judge("index.html", facts(**changes), site)) == ["offline"], changes


def test_failed_loads_of_the_books_own_files(site):
    font = BASE + "_static/mathjax/output/chtml/fonts/woff-v2/MathJax_Zero.woff"
    problems = checker.judge("index.html", facts(resources=[{"url": font, "type": "css", "status": 404}]), site)
    assert checks(problems) == ["resources"]
    console = [BASE + "_static/x.js - Failed to load resource: the server responded with a status of 404"]
    assert checks(checker.judge("index.html", facts(console=console), site)) == ["resources"]
    assert checks(checker.judge("index.html", facts(fontsFailed=["MJXZERO"]), site)) == ["resources"]
    favicon = [{"url": BASE + "favicon.ico", "type": "other", "status": 404}]
    assert checker.judge("index.html", facts(resources=favicon), site) == []


def test_console_errors_except_the_themes_known_noise(site):
    error = [BASE + "book/nb.html 12:3 Uncaught TypeError: x is undefined"]
    assert checks(checker.judge("index.html", facts(console=error), site)) == ["console"]
    noise = [
        BASE + "book/nb.html 61:12 Uncaught SyntaxError: Identifier 'THEBE_JS_URL' has already been declared",
        BASE + '_static/scripts/pydata-sphinx-theme.js 0:1488 "Got invalid theme mode: . Resetting to auto."',
    ]
    assert checker.judge("index.html", facts(console=noise), site) == []


def test_colab_button_of_a_notebook_page(site):
    def colab(*urls):
        return facts(links=[{"href": u, "url": u} for u in urls])

    assert checker.judge("book/nb.html", colab(COLAB + "book/nb.ipynb"), site) == []
    assert checks(checker.judge("book/nb.html", facts(), site)) == ["colab"]  # no button
    wrong = COLAB + "./book/nb.ipynb"
    assert checks(checker.judge("book/nb.html", colab(wrong), site)) == ["colab"]
    assert checks(checker.judge("index.html", colab(COLAB + "index.ipynb"), site)) == ["colab"]  # not a notebook
    (site.repo_root / "book" / "nb.ipynb").unlink()
    problems = checker.judge("book/nb.html", colab(COLAB + "book/nb.ipynb"), site)
    assert checks(problems) == ["colab"] and "not in the repository" in problems[0][1]


def test_pages_skip_the_builds_asset_folders(site):
    (site.book_dir / "_static").mkdir()
    (site.book_dir / "_static" / "x.html").write_text("<html></html>")
    assert checker.list_pages(site.book_dir) == ["book/index.html", "book/nb.html", "index.html"]


# ----------------------------------------------------------------------------------------------
# The whole checker in headless Chromium, on a tiny site with one defect per page
# ----------------------------------------------------------------------------------------------


def _browser_or_skip():
    pytest.importorskip("selenium")
    try:
        return checker.find_browser()
    except RuntimeError as err:
        pytest.skip(str(err))


def _page(body: str, head: str = "") -> str:
    return f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>t</title>{head}</head><body>{body}</body></html>"


def test_the_checker_in_chromium_catches_one_defect_per_page(tmp_path: Path):
    _browser_or_skip()
    book, repo = tmp_path / "html", tmp_path / "repo"
    (book / "_images").mkdir(parents=True)
    (book / "book").mkdir()
    (book / "_sources" / "book").mkdir(parents=True)
    (repo / "book").mkdir(parents=True)
    pixels = (np.arange(32 * 48 * 3).reshape(32, 48, 3) % 251).astype(np.uint8)
    Image.fromarray(pixels).save(book / "_images" / "figure.png")
    (book / "_images" / "not_a_png.png").write_bytes(b"this is not an image")
    pages = {
        "index.html": _page(
            "<h1 id='top'>ok</h1><img src='_images/figure.png'><a href='book/nb.html#summary'>nb</a>"
            "<a href='#top'>top</a><a href='https://example.org/'>elsewhere</a>"
        ),
        "missing_image.html": _page("<img src='_images/gone.png'>"),
        "corrupt_image.html": _page("<img src='_images/not_a_png.png'>"),
        "bad_link.html": _page("<a href='nowhere.html'>x</a>"),
        "bad_anchor.html": _page("<a href='index.html#nope'>x</a>"),
        "error_cell.html": _page(
            "<div class='cell_output'><div class='output traceback'><pre>ZeroDivisionError  "
            "Traceback (most recent call last)</pre></div></div>"
        ),
        "cdn_script.html": _page("<p>x</p>", "<script src='https://cdn.example.org/lib.js'></script>"),
        "raw_math.html": _page(r"<p><span class='math notranslate nohighlight'>\(x^2\)</span></p>"),
        "console_error.html": _page("<script>undefinedFunction();</script>"),
        "undrawn_widget.html": _page(
            "<div class='cell_output'><script type='application/vnd.jupyter.widget-view+json'>"
            '{"version_major": 2, "version_minor": 0, "model_id": "abc"}</script></div>'
        ),
        "book/nb.html": _page(
            "<section id='summary'>nb</section>"
            f"<a href='{COLAB}./book/nb.ipynb'>Colab</a>"  # the ./ that path_to_book: "." used to give
        ),
    }
    expected = {
        "index.html": [],
        "missing_image.html": ["images"],
        "corrupt_image.html": ["images"],
        "bad_link.html": ["links"],
        "bad_anchor.html": ["links"],
        "error_cell.html": ["outputs"],
        "cdn_script.html": ["offline"],
        "raw_math.html": ["math"],
        "console_error.html": ["console"],
        "undrawn_widget.html": ["widgets"],
        "book/nb.html": ["colab"],
    }
    mathjax = ROOT / "_vendor" / "mathjax"
    if (mathjax / "output").is_dir():  # installed by `make book-assets` (not the CDN stub)
        shutil.copytree(mathjax, book / "_static" / "mathjax")
        script = "<script defer src='_static/mathjax/tex-chtml.js'></script>"
        pages["math.html"] = _page(r"<p><span class='math notranslate nohighlight'>\(\sum_i x_i^2\)</span></p>", script)
        expected["math.html"] = []
    for name, html in pages.items():
        (book / name).write_text(html)
    (book / "_sources" / "book" / "nb.ipynb").write_text("{}")
    (repo / "book" / "nb.ipynb").write_text("{}")

    out = io.StringIO()
    shots = tmp_path / "screenshots"
    results = checker.check_book(book, shots, repo_root=repo, colab_prefix=COLAB, timeout_s=3, out=out)

    assert {page: checks(problems) for page, problems in results.items()} == expected, out.getvalue()
    lines = out.getvalue().splitlines()
    assert sum(line.startswith(("ok", "FAIL")) for line in lines) == len(pages)  # one summary line a page
    for page in pages:
        png = shots / (page.removesuffix(".html").replace("/", "__") + ".png")
        assert Image.open(png).size[0] > 0
