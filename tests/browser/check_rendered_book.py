#!/usr/bin/env python
"""Open every page of the built book in headless Chromium and check that it renders.

Run it after the strict book build (``make browser-check`` does both)::

    python tests/browser/check_rendered_book.py --book-dir executed_book/_build/html

The pages are served by a local HTTP server on a free port and opened one by one in Debian's
headless Chromium, driven by Selenium through ``/usr/bin/chromedriver`` (given explicitly, so
Selenium Manager never downloads a driver). Chromium resolves no host name other than the local
server's, so the book is seen the way a reader without internet sees it. Per page:

- ``images``: every ``<img>`` finished loading and has a non-zero natural width;
- ``outputs``: no error output cell (a traceback, or an exception printed to stderr);
- ``links``: every internal link points at a file of the build, and its ``#anchor`` exists there;
- ``math``: where the page has math, MathJax typeset every formula (no raw TeX, no TeX error);
- ``widgets``: every saved widget (a tqdm progress bar) is drawn by the bundled widget manager;
- ``offline``: nothing (script, style sheet, font, image) comes from another host;
- ``resources``: no resource of the book failed to load (a missing MathJax font, a 404 script);
- ``console``: no error in the browser console (failed loads are reported by the checks above);
- ``colab``: a notebook page's launch button points at
  ``https://colab.research.google.com/github/anolearn/anolearn/blob/main/<path>.ipynb`` and that
  notebook exists in the repository; a page that is not a notebook has no Colab button.

It prints one line per page, keeps a full-page screenshot of each page in ``--screenshots``
(default: ``<book-dir>/../screenshots``) and exits with status 1 when any page fails.

The browser only gathers facts about a page (``collect_facts``); ``judge`` turns them into problems
in plain Python, so ``tests/test_browser_checker.py`` tests the rules on hand-made facts without a
browser, and the whole checker on a tiny hand-made site when Chromium is installed.
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import os
import re
import shutil
import sys
import threading
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

REPO_ROOT = Path(__file__).resolve().parents[2]
COLAB_PREFIX = "https://colab.research.google.com/github/anolearn/anolearn/blob/main/"
CHECKS = ("images", "outputs", "links", "math", "widgets", "offline", "resources", "console", "colab")
# An exception line as Python prints it ("ValueError: ...", "torch.OutOfMemoryError: ...").
EXCEPTION_LINE = re.compile(r"^\s*(?:[\w.]+\.)?\w*(?:Error|Exception)\b:", re.MULTILINE)
# Console errors of the theme itself, the same on every Jupyter Book 1 page, that change nothing a
# reader sees: every page carries sphinx-thebe 0.3.1's inline config script twice, so the second
# `const THEBE_JS_URL` is a redeclaration (thebe is not used: no live-code button); pydata-sphinx-theme
# reports an unset light/dark preference on a first visit, then falls back to "auto".
KNOWN_CONSOLE_NOISE = (
    "Identifier 'THEBE_JS_URL' has already been declared",
    "Got invalid theme mode",
)


# ----------------------------------------------------------------------------------------------
# What the browser reports about a page
# ----------------------------------------------------------------------------------------------

# Loads lazy images, then resolves once every image has settled (or after the timeout).
WAIT_FOR_IMAGES_JS = """
const done = arguments[arguments.length - 1];
const timeoutMs = arguments[0];
for (const img of document.images) { if (img.loading === "lazy") img.loading = "eager"; }
window.scrollTo(0, document.documentElement.scrollHeight);
window.scrollTo(0, 0);
const t0 = Date.now();
(function poll() {
  if ([...document.images].every(img => img.complete) || Date.now() - t0 > timeoutMs) done(true);
  else setTimeout(poll, 50);
})();
"""

# Resolves when MathJax has typeset the page: "none" (no formula), "ok", "missing" (MathJax never
# started: not loaded, or loaded from a host the browser cannot reach) or "error: ...".
WAIT_FOR_MATHJAX_JS = """
const done = arguments[arguments.length - 1];
const timeoutMs = arguments[0];
if (!document.querySelector(".math")) { done("none"); return; }
const t0 = Date.now();
(function poll() {
  const mj = window.MathJax;
  if (mj && mj.startup && mj.startup.promise) {
    mj.startup.promise.then(() => document.fonts.ready).then(() => done("ok"), e => done("error: " + e));
  } else if (Date.now() - t0 > timeoutMs) done("missing");
  else setTimeout(poll, 50);
})();
"""

# Resolves when the saved widgets (e.g. tqdm progress bars) are drawn: "none", "ok" or "missing".
WAIT_FOR_WIDGETS_JS = """
const done = arguments[arguments.length - 1];
const timeoutMs = arguments[0];
const views = document.querySelectorAll(WIDGET_VIEW).length;
if (!views) { done("none"); return; }
const t0 = Date.now();
(function poll() {
  if (document.querySelectorAll(WIDGET_DRAWN).length >= views) done("ok");
  else if (Date.now() - t0 > timeoutMs) done("missing");
  else setTimeout(poll, 50);
})();
"""
WIDGET_JS_CONSTANTS = """
const WIDGET_VIEW = 'script[type="application/vnd.jupyter.widget-view+json"]';
const WIDGET_DRAWN = ".widget-subarea > .jupyter-widgets";
"""
WAIT_FOR_WIDGETS_JS = WIDGET_JS_CONSTANTS + WAIT_FOR_WIDGETS_JS

COLLECT_JS = WIDGET_JS_CONSTANTS + """
const text = el => (el.textContent || "").trim().replace(/\\s+/g, " ").slice(0, 200);
const formulas = [...document.querySelectorAll(".math")];
return {
  title: document.title,
  images: [...document.images].map(img => ({
    src: img.getAttribute("src") || "", url: img.currentSrc || img.src,
    complete: img.complete, naturalWidth: img.naturalWidth})),
  links: [...document.querySelectorAll("a[href]")].map(a => ({href: a.getAttribute("href"), url: a.href})),
  tracebacks: [...document.querySelectorAll(".output.traceback, .output.error")].map(text),
  stderr: [...document.querySelectorAll(".output.stderr")].map(el => (el.textContent || "").slice(0, 2000)),
  outputs: [...document.querySelectorAll(".cell_output")].map(el => (el.textContent || "").slice(0, 20000)),
  math: {
    formulas: formulas.length,
    typeset: formulas.filter(el => el.querySelector("mjx-container")).length,
    untypeset: formulas.filter(el => !el.querySelector("mjx-container")).map(text).slice(0, 5),
    containers: document.querySelectorAll("mjx-container").length,
    errors: [...document.querySelectorAll("mjx-merror, [data-mjx-error]")].map(
      el => el.getAttribute("data-mjx-error") || text(el)).slice(0, 5),
  },
  widgets: {views: document.querySelectorAll(WIDGET_VIEW).length,
            drawn: document.querySelectorAll(WIDGET_DRAWN).length},
  scripts: [...document.querySelectorAll("script[src]")].map(s => s.src),
  stylesheets: [...document.querySelectorAll("link[rel~=stylesheet][href]")].map(l => l.href),
  resources: performance.getEntriesByType("resource").map(r => ({
    url: r.name, type: r.initiatorType, status: r.responseStatus || 0})),
  fontsFailed: [...document.fonts].filter(f => f.status === "error").map(f => f.family),
};
"""


def collect_facts(driver, url: str, timeout_s: float = 20.0) -> dict:
    """Open ``url`` in ``driver``, wait until images and math have settled, and report the page.

    Returns:
        dict of JSON values: ``title``, ``images`` [{src, url, complete, naturalWidth}], ``links``
        [{href (as written), url (resolved)}], ``tracebacks``, ``stderr``, ``outputs`` (text of
        the output cells), ``math`` {formulas, typeset, untypeset (examples), containers, errors, status},
        ``widgets`` {views, drawn, status},
        ``scripts``, ``stylesheets``, ``resources`` [{url, type, status}], ``fontsFailed``,
        ``console`` (error messages of the browser console).
    """
    driver.get_log("browser")  # drop what earlier pages logged
    driver.get(url)
    driver.set_script_timeout(timeout_s + 5)
    driver.execute_async_script(WAIT_FOR_IMAGES_JS, int(timeout_s * 1000))
    math_status = driver.execute_async_script(WAIT_FOR_MATHJAX_JS, int(timeout_s * 1000))
    widgets_status = driver.execute_async_script(WAIT_FOR_WIDGETS_JS, int(timeout_s * 1000))
    facts = driver.execute_script(COLLECT_JS)
    facts["math"]["status"] = math_status
    facts["widgets"]["status"] = widgets_status
    facts["console"] = [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    return facts


def save_screenshot(driver, path: Path, max_height: int = 30000) -> None:
    """Save a PNG of the whole page, not just the window.

    The window is made as tall as the page for the shot, then given its size back. (The DevTools
    capture "beyond the viewport" mis-draws this theme: its sticky sidebars shift the article.)
    """
    size = driver.get_window_size()
    try:
        for _ in range(3):  # a taller window can change the layout: measure again
            page_height, inner, outer = driver.execute_script(
                "return [document.documentElement.scrollHeight, window.innerHeight, window.outerHeight]"
            )
            if inner >= min(page_height, max_height):
                break
            driver.set_window_size(size["width"], min(page_height, max_height) + outer - inner)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(driver.get_screenshot_as_png())
    finally:
        driver.set_window_size(size["width"], size["height"])


# ----------------------------------------------------------------------------------------------
# Turning facts into problems (plain Python, no browser)
# ----------------------------------------------------------------------------------------------


class _Anchors(HTMLParser):
    """Every ``id`` (and ``<a name>``) of an HTML file: the targets a ``#fragment`` can point at."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.anchors: set[str] = set()

    def handle_starttag(self, tag, attrs):
        for key, value in attrs:
            if value and (key == "id" or (key == "name" and tag == "a")):
                self.anchors.add(value)


@dataclass
class Site:
    """The built book as files, to judge a page's facts against.

    Args:
        book_dir: the HTML build (``.../_build/html``).
        base_url: the URL the build is served at (``http://127.0.0.1:PORT/``).
        repo_root: where the notebooks that Colab opens live (``book/NN.ipynb``).
        colab_prefix: the Colab URL of the repository, to which a notebook's path is appended.
    """

    book_dir: Path
    base_url: str
    repo_root: Path = REPO_ROOT
    colab_prefix: str = COLAB_PREFIX
    _anchors: dict = field(default_factory=dict, repr=False)

    def anchors(self, path: Path) -> set[str]:
        if path not in self._anchors:
            parser = _Anchors()
            parser.feed(path.read_text(encoding="utf-8", errors="replace"))
            self._anchors[path] = parser.anchors
        return self._anchors[path]

    def local_file(self, url: str) -> Path | None:
        """The build file a URL of the local server points at, or None when it is another host's."""
        parts, base = urlsplit(url), urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or parts.netloc != base.netloc:
            return None
        return self.book_dir / unquote(parts.path).lstrip("/")

    def is_external(self, url: str) -> bool:
        parts = urlsplit(url)
        return parts.scheme in ("http", "https") and parts.netloc != urlsplit(self.base_url).netloc


def _check_link(site: Site, url: str) -> str | None:
    """What is wrong with an internal link, or None (also for links to other hosts)."""
    target = site.local_file(url)
    if target is None:
        return None
    root = site.book_dir.resolve()
    if target.is_dir():
        target = target / "index.html"
    resolved = target.resolve()
    if resolved != root and root not in resolved.parents:
        return "points outside the book"
    if not target.is_file():
        return f"{target.relative_to(site.book_dir).as_posix()} does not exist"
    fragment = unquote(urlsplit(url).fragment)
    if fragment and target.suffix == ".html" and fragment not in site.anchors(target):
        return f"#{fragment} is not on {target.relative_to(site.book_dir).as_posix()}"
    return None


def judge(page: str, facts: dict, site: Site) -> list[tuple[str, str]]:
    """The problems of one page.

    Args:
        page: the page's path in the build, e.g. ``"book/02_metrics.html"``.
        facts: what ``collect_facts`` reported for it.
        site: the build and the expected Colab URL.

    Returns:
        ``[(check, message), ...]`` with ``check`` one of ``CHECKS``; empty when the page is fine.
    """
    problems: list[tuple[str, str]] = []

    for img in facts["images"]:
        if not img["complete"] or img["naturalWidth"] == 0:
            problems.append(("images", f"image did not load: {img['src'] or img['url']}"))

    for text in facts["tracebacks"]:
        problems.append(("outputs", f"error output: {text[:120]}"))
    if not facts["tracebacks"]:  # an error output also shows as text: report it once
        # stderr that names an exception, or any output with a Python traceback in it.
        stderr = [t for t in facts["stderr"] if EXCEPTION_LINE.search(t)]
        printed = [t for t in facts.get("outputs", []) if "Traceback (most recent call last)" in t]
        for text in stderr or printed:
            problems.append(("outputs", f"exception in an output cell: {' '.join(text.split())[:120]}"))

    seen = set()
    for link in facts["links"]:
        url = link["url"]
        if url in seen:
            continue
        seen.add(url)
        why = _check_link(site, url)
        if why:
            problems.append(("links", f"broken link {link['href']!r}: {why}"))

    math = facts["math"]
    if math["formulas"]:
        if math["status"] != "ok":
            problems.append(("math", f"MathJax did not typeset the page ({math['status']})"))
        elif math["untypeset"]:
            problems.append(("math", f"formulas left as raw TeX, e.g. {math['untypeset'][0][:80]!r}"))
        for error in math["errors"]:
            problems.append(("math", f"TeX error: {error[:120]}"))

    widgets = facts.get("widgets", {"views": 0, "drawn": 0})
    if widgets["drawn"] < widgets["views"]:
        missing = widgets["views"] - widgets["drawn"]
        why = f"not drawn ({widgets.get('status', '?')}): is the widget manager loaded?"
        problems.append(("widgets", f"{missing} of {widgets['views']} saved widgets (e.g. progress bars) {why}"))

    external = list(facts["scripts"] + facts["stylesheets"])
    external += [r["url"] for r in facts["resources"] if site.is_external(r["url"])]
    # A load that failed before any response (another host, offline) may leave no resource entry,
    # only a console line "<url> - Failed to load resource: net::ERR_NAME_NOT_RESOLVED".
    external += [m.split()[0] for m in facts.get("console", []) if "Failed to load resource" in m]
    external = [url for url in external if site.is_external(url)]
    for url in dict.fromkeys(external):
        problems.append(("offline", f"loads {url} from another host (the book must read offline)"))

    # Failed loads of the book's own files. Images are the images check's; the browser asks for
    # /favicon.ico by itself (the book declares none).
    skip = {img["url"] for img in facts["images"]} | {urljoin(site.base_url, "/favicon.ico")}
    failed = {}
    for resource in facts["resources"]:
        url = resource["url"]
        if resource["status"] >= 400 and not site.is_external(url) and url not in skip:
            failed.setdefault(url, f"{resource['type']} {url} answered {resource['status']}")
    for message in facts.get("console", []):
        url, _, why = message.partition(" - ")
        if "Failed to load resource" in why and not site.is_external(url) and url not in skip:
            failed.setdefault(url, f"{url}: {why}")
    # The ipywidgets manager's own icon fonts (Font Awesome, under @jupyter-widgets/) are sometimes
    # asked for relative to the page instead of the manager's folder, depending on the order in
    # which the page's scripts finish loading. A progress bar draws no icon, so these are reported
    # as notes, which do not fail the check; every other missing file or font does.
    widget_font = re.compile(r"/@jupyter-widgets/[^/]*\.(woff2?|ttf|eot)$")
    for url, message in failed.items():
        problems.append(("note" if widget_font.search(url.split("?")[0]) else "resources", message))
    widget_fonts_failed = any(widget_font.search(url.split("?")[0]) for url in failed)
    for family in dict.fromkeys(facts["fontsFailed"]):
        icon_font = widget_fonts_failed and family.startswith("Font Awesome")
        problems.append(("note" if icon_font else "resources", f"font {family} failed to load"))

    for message in facts.get("console", []):
        if "Failed to load resource" in message:
            continue  # reported above, with the URL
        if not any(noise in message for noise in KNOWN_CONSOLE_NOISE):
            problems.append(("console", message[:200]))

    # As written in the page: the resolved URL would hide a "./" (the browser drops dot segments).
    colab = sorted({link["href"] for link in facts["links"] if "colab.research.google.com" in link["href"]})
    notebook = Path(page).with_suffix(".ipynb").as_posix()
    if (site.book_dir / "_sources" / notebook).is_file():
        expected = site.colab_prefix + notebook
        if colab != [expected]:
            problems.append(("colab", f"Colab button is {colab or 'missing'}, expected {expected}"))
        elif not (site.repo_root / notebook).is_file():
            problems.append(("colab", f"Colab opens {notebook}, which is not in the repository"))
    elif colab:
        problems.append(("colab", f"Colab button on a page that is not a notebook: {colab}"))
    return problems


# ----------------------------------------------------------------------------------------------
# Server, browser and the run over all pages
# ----------------------------------------------------------------------------------------------


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # one line per request would drown the summary
        pass


@contextlib.contextmanager
def serve(directory: Path):
    """Serve ``directory`` on a free local port; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def find_browser(chromium: str | None = None, chromedriver: str | None = None) -> tuple[str, str]:
    """Paths of Chromium and its WebDriver; raises RuntimeError saying how to install them."""
    chromium = chromium or next(
        (p for p in (shutil.which(n) for n in ("chromium", "chromium-browser")) if p), None
    )
    if chromedriver is None:
        chromedriver = "/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").is_file() else shutil.which("chromedriver")
    if not chromium or not chromedriver or not Path(chromium).is_file() or not Path(chromedriver).is_file():
        raise RuntimeError(
            "the browser check needs Chromium and chromedriver: on Debian/Ubuntu run "
            "`sudo apt-get install -y chromium chromium-driver` (or pass --chromium/--chromedriver)"
        )
    return chromium, chromedriver


@contextlib.contextmanager
def start_browser(chromium: str, chromedriver: str, width: int = 1280, height: int = 1000):
    """Headless Chromium that can reach 127.0.0.1 only; yields the Selenium driver."""
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager, if ever called, downloads nothing
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking", "--disable-component-update", "--disable-extensions",
        "--disable-sync", "--no-first-run", "--hide-scrollbars", "--lang=en-US",
        f"--window-size={width},{height}",
        # Every host but the local server is unreachable: the page is seen as an offline reader sees it.
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=chromedriver))
    try:
        yield driver
    finally:
        driver.quit()


REFRESH = re.compile(r"""<meta\s+http-equiv=["']?refresh["']?\s+content=["']?\s*\d+\s*;\s*url=([^"'\s>]+)""", re.IGNORECASE)


def redirect_target(path: Path) -> str | None:
    """Where a redirect page (``<meta http-equiv="refresh">``, like the book's root index) sends the
    reader, relative to the build; None for a real page."""
    match = REFRESH.search(path.read_text(encoding="utf-8", errors="replace")[:4096])
    if match is None:
        return None
    return (path.parent / unquote(match.group(1))).resolve().as_posix()


def list_pages(book_dir: Path) -> list[str]:
    """The HTML pages of a build (not the files under ``_static``, ``_sources``, ``_images``)."""
    pages = []
    for path in book_dir.rglob("*.html"):
        rel = path.relative_to(book_dir)
        if not any(part.startswith(("_", ".")) for part in rel.parts[:-1]):
            pages.append(rel.as_posix())
    return sorted(pages)


def failing(problems: list) -> list:
    """The problems that fail a page (notes are printed but do not)."""
    return [(check, message) for check, message in problems if check != "note"]


def summary_line(page: str, facts: dict, problems: list, seconds: float) -> str:
    images = facts["images"]
    loaded = sum(1 for i in images if i["complete"] and i["naturalWidth"] > 0)
    math = facts["math"]
    typeset = math.get("typeset", 0)
    status = "FAIL" if failing(problems) else "ok  "
    return (
        f"{status} {page:<40} images {loaded}/{len(images)}  math {typeset}/{math['formulas']}  "
        f"widgets {facts['widgets']['drawn']}/{facts['widgets']['views']}  links {len(facts['links'])}  "
        f"stderr {len(facts['stderr'])}  {seconds:4.1f} s"
    )


def check_book(
    book_dir: Path,
    screenshots: Path | None = None,
    repo_root: Path = REPO_ROOT,
    colab_prefix: str = COLAB_PREFIX,
    chromium: str | None = None,
    chromedriver: str | None = None,
    pages: list[str] | None = None,
    timeout_s: float = 20.0,
    out=sys.stdout,
) -> dict[str, list[tuple[str, str]]]:
    """Check every page of ``book_dir``; prints one line per page (and its problems).

    ``timeout_s`` bounds the wait for a page's images and for MathJax.

    Returns:
        ``{page: [(check, message), ...]}`` for every page checked.
    """
    book_dir = Path(book_dir)
    if not (book_dir / "index.html").is_file():
        raise FileNotFoundError(f"{book_dir} has no index.html: build the book first (make book-check)")
    chromium, chromedriver = find_browser(chromium, chromedriver)
    pages = list_pages(book_dir) if pages is None else pages
    results = {}
    with serve(book_dir) as base_url, start_browser(chromium, chromedriver) as driver:
        site = Site(book_dir, base_url, Path(repo_root), colab_prefix)
        for page in pages:
            target = redirect_target(book_dir / page)
            if target is not None:  # it navigates away at once: check where to, not the page
                ok = Path(target).is_file() and book_dir.resolve() in Path(target).parents
                where = Path(target).relative_to(book_dir.resolve()).as_posix() if ok else target
                results[page] = [] if ok else [("links", f"redirects to {target}, not a page of the book")]
                print(f"{'ok  ' if ok else 'FAIL'} {page:<40} redirects to {where}", file=out, flush=True)
                continue
            start = time.perf_counter()
            facts = collect_facts(driver, base_url + page, timeout_s)
            if screenshots is not None:
                save_screenshot(driver, Path(screenshots) / (page.removesuffix(".html").replace("/", "__") + ".png"))
            problems = judge(page, facts, site)
            results[page] = problems
            print(summary_line(page, facts, problems, time.perf_counter() - start), file=out, flush=True)
            for check, message in problems:
                print(f"     [{check}] {message}", file=out, flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--book-dir", type=Path, default=REPO_ROOT / "executed_book" / "_build" / "html")
    parser.add_argument("--screenshots", type=Path, default=None, help="default: <book-dir>/../screenshots")
    parser.add_argument("--repo-root", type=Path, default=REPO_ROOT, help="where the notebooks Colab opens live")
    parser.add_argument("--colab-prefix", default=COLAB_PREFIX)
    parser.add_argument("--chromium", default=None)
    parser.add_argument("--chromedriver", default=None)
    args = parser.parse_args(argv)
    screenshots = args.screenshots or args.book_dir.parent / "screenshots"
    for stale in screenshots.glob("*.png"):  # of a page that may no longer exist
        stale.unlink()
    start = time.perf_counter()
    try:
        results = check_book(
            args.book_dir, screenshots, args.repo_root, args.colab_prefix, args.chromium, args.chromedriver
        )
    except (FileNotFoundError, RuntimeError) as err:
        print(f"browser check: {err}", file=sys.stderr)
        return 2
    failed = [page for page, problems in results.items() if failing(problems)]
    print(
        f"browser check: {len(results) - len(failed)}/{len(results)} pages ok in "
        f"{time.perf_counter() - start:.0f} s; screenshots in {screenshots}"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
