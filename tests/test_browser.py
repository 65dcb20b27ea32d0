"""The built book in a real browser: widgets respond without a kernel, nothing leaves localhost.

Needs Debian's ``chromium`` (``.ci/run`` installs it; skipped with a reason where it is
absent) and the built book in ``_build/html`` (``make test`` builds it first and sets
ZFBOOK_REQUIRE_BOOK=1, so that a missing book fails instead of skipping).

Reusable pieces for chapter tests:

    def test_my_chapter_widget(open_page):
        page = open_page("book/deconvnet.html")
        explorer = page.explorers().nth(0)
        before = view_src(explorer)
        press_slider(explorer, "feature")
        assert view_src(explorer) != before
        assert page.external_requests == []
"""
from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shutil
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "_build" / "html"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
LOCAL_SCHEMES = ("data:", "blob:", "about:")


def _require_book() -> Path:
    if not (BOOK / "index.html").is_file():
        message = "the book is not built: run `make html` (or `make test`, which builds it)"
        if os.environ.get("ZFBOOK_REQUIRE_BOOK"):
            pytest.fail(message)
        pytest.skip(message)
    return BOOK


def _toc_pages() -> list[str]:
    sys.path.insert(0, str(ROOT / "tools"))
    from chapters import chapters

    return [str(p.relative_to(ROOT).with_suffix(".html")) for p in chapters()]


# -------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="session")
def book_url():
    """The built book served on 127.0.0.1 by a background thread."""
    directory = _require_book()
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="session")
def browser():
    executable = shutil.which("chromium")
    if executable is None:
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium; "
                    ".ci/run does it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


class BookPage:
    """A page of the book, with every request it made outside the local server."""

    def __init__(self, browser, base: str, path: str):
        self.context = browser.new_context()
        self.page = self.context.new_page()
        self.page.set_default_timeout(120_000)   # a loaded 2-core machine is slow
        self.external_requests: list[str] = []
        self.errors: list[str] = []
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.in_flight: set = set()
        self.page.on("request", lambda r: self.in_flight.add(r))
        self.page.on("requestfinished", lambda r: self.in_flight.discard(r))
        self.page.on("requestfailed", lambda r: self.in_flight.discard(r))

        def route(r):
            url = r.request.url
            if url.startswith(base) or url.startswith(LOCAL_SCHEMES):
                r.continue_()
            else:  # recorded, and never sent: the test machine has no internet anyway
                self.external_requests.append(url)
                r.abort()

        self.page.route("**/*", route)
        response = self.page.goto(base + path, wait_until="load")
        assert response is not None and response.ok, f"{path}: HTTP error"
        self.settle(path)

    def settle(self, path: str, quiet_s: float = 0.5, timeout_s: float = 120.0):
        """Wait until no request has been in flight for ``quiet_s``: what Playwright's
        "networkidle" means, counted from the page's own request events (Chromium's
        networkidle lifecycle event can be missed on a loaded machine, and then the wait
        hangs with nothing pending). Fails naming the requests still open."""
        deadline, quiet_since = time.monotonic() + timeout_s, None
        while time.monotonic() < deadline:
            self.page.wait_for_timeout(100)        # lets Playwright dispatch the events
            if self.in_flight:
                quiet_since = None
            elif quiet_since is None:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= quiet_s:
                return
        pending = sorted(r.url[:120] for r in self.in_flight)
        pytest.fail(f"{path}: {len(pending)} request(s) still open after {timeout_s:.0f} s: "
                    f"{pending[:5]}")

    def explorers(self):
        """The static (kernel-free) zfbook.widgets.Explorer outputs on the page."""
        return self.page.locator(".zfbook-explorer")


@pytest.fixture
def open_page(browser, book_url):
    pages = []

    def open_(path: str) -> BookPage:
        pages.append(BookPage(browser, book_url, path))
        return pages[-1]

    yield open_
    for p in pages:
        p.context.close()


# --------------------------------------------------------------------------- helpers
def view_src(explorer) -> str:
    return explorer.locator("img.zfbook-explorer-view").get_attribute("src")


def shown_view(explorer) -> str:
    """The displayed view: an image's src, or the HTML of an HTML view."""
    view = explorer.locator(".zfbook-explorer-view")
    return view.evaluate("v => v.tagName === 'IMG' ? v.src : v.innerHTML")


def normalised(page: BookPage, view: str) -> str:
    """A view as the browser shows it (HTML views are re-serialised by the parser)."""
    if view.startswith("data:"):
        return view
    return page.page.evaluate("s => { const d = document.createElement('div'); "
                              "d.innerHTML = s; return d.innerHTML; }", view)


def press_slider(explorer, name: str, key: str = "ArrowRight") -> None:
    """Move a slider one step the way a reader does: focus it and press an arrow key."""
    explorer.locator(f'input[type=range][data-name="{name}"]').press(key)


def views(explorer) -> list[str]:
    return json.loads(explorer.locator("script.zfbook-explorer-views").text_content())


# ----------------------------------------------------------------------------- tests
def test_explorer_switches_every_view_client_side(browser, tmp_path):
    """The mechanism on a page of its own: a slider and a drop-down, every combination."""
    import numpy as np
    from zfbook.widgets import Explorer, dropdown, slider

    def render(colour, size):
        image = np.zeros((8, 8, 3), np.uint8)
        image[:size, :size, ["red", "green", "blue"].index(colour)] = 255
        return image

    e = Explorer(render, dropdown("colour", ["red", "green", "blue"]),
                 slider("size", [2, 4, 6, 8], labels=["two", "four", "six", "eight"]))
    (tmp_path / "page.html").write_text(f"<!doctype html><html><body>{e.static_html()}"
                                        f"</body></html>")
    context = browser.new_context()
    try:
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda err: errors.append(str(err)))
        page.goto((tmp_path / "page.html").as_uri())
        explorer = page.locator(".zfbook-explorer")
        expected = views(explorer)
        assert view_src(explorer) == expected[0]
        select = explorer.locator('select[data-name="colour"]')
        for c in range(3):
            select.select_option(str(c))
            for s in range(4):
                if s:
                    press_slider(explorer, "size")
                assert view_src(explorer) == expected[4 * c + s]
                label = explorer.locator("output").text_content()
                assert label == ["two", "four", "six", "eight"][s]
            for _ in range(3):
                press_slider(explorer, "size", "ArrowLeft")
            assert view_src(explorer) == expected[4 * c]
        assert errors == []
    finally:
        context.close()


def test_preface_widget_responds_without_a_kernel(open_page):
    page = open_page("book/index.html")
    explorer = page.explorers().nth(0)
    expected = views(explorer)
    assert len(expected) > 1
    before = view_src(explorer)
    assert before == expected[0]
    press_slider(explorer, "image")
    assert view_src(explorer) == expected[1] != before
    labels = json.loads(explorer.locator('input[type=range]').get_attribute("data-labels"))
    assert explorer.locator("output").text_content() == labels[1]
    # the page shows the static version, not an empty ipywidgets placeholder
    assert page.page.locator('script[type="application/vnd.jupyter.widget-view+json"]').count() == 0
    assert page.errors == []
    assert page.external_requests == []


TOC_PAGES = _toc_pages() if (ROOT / "_toc.yml").is_file() else []


@pytest.mark.parametrize("path", ["index.html", "search.html"] + TOC_PAGES)
def test_pages_load_nothing_from_outside_localhost(open_page, path):
    page = open_page(path)
    assert page.external_requests == [], f"{path} requested {page.external_requests}"
    assert page.errors == []


@pytest.mark.parametrize("path", TOC_PAGES)
def test_every_widget_on_the_page_responds(open_page, path):
    """Each control of each Explorer on the page, moved one step and back, shows the view
    its stride points to (a page without widgets passes trivially)."""
    page = open_page(path)
    for i in range(page.explorers().count()):
        explorer = page.explorers().nth(i)
        expected = views(explorer)
        for control in explorer.locator("[data-stride]").all():
            if len(json.loads(control.get_attribute("data-labels"))) < 2:
                continue
            stride = int(control.get_attribute("data-stride"))
            is_select = control.evaluate("c => c.tagName === 'SELECT'")
            control.select_option("1") if is_select else control.press("ArrowRight")
            assert shown_view(explorer) == normalised(page, expected[stride])
            control.select_option("0") if is_select else control.press("ArrowLeft")
            assert shown_view(explorer) == normalised(page, expected[0])
    assert page.errors == []


def test_no_page_references_a_script_stylesheet_or_font_elsewhere():
    """Every built page, read as text: no <script src>, <link href> or CSS url() off-site.

    (Links a reader clicks, such as the Colab and Binder launch buttons, are fine.)"""
    book = _require_book()
    pattern = re.compile(r'<script[^>]*\ssrc="(?:https?:)?//|<link[^>]*\shref="(?:https?:)?//'
                         r'|url\(["\']?(?:https?:)?//|@import\s+["\']?(?:https?:)?//')
    offenders = []
    for page in sorted(book.rglob("*.html")) + sorted(book.rglob("*.css")):
        for match in pattern.finditer(page.read_text(errors="replace")):
            offenders.append(f"{page.relative_to(book)}: {match.group(0)}")
    assert offenders == []


# ----------------------------------------------------- the page a reader sees (WRITING.md)
SCREENSHOTS = ROOT / "_build" / "screenshots"
WINDOW = {"width": 1280, "height": 900}

#: Run in the page: every problem a reader would see, as [rule, element, detail] triples.
READER_CHECKS = r"""() => {
  const problems = [];
  const article = document.querySelector('article.bd-article') || document.querySelector('main');
  const box = article.getBoundingClientRect();
  const style = getComputedStyle(article);
  const right = box.right - parseFloat(style.paddingRight) + 2;
  const wideRight = (document.querySelector('.bd-main') || article).getBoundingClientRect().right + 2;
  const visible = e => e.offsetParent !== null && e.getBoundingClientRect().width > 0;
  const name = e => {
    const cell = e.closest('.cell');
    const cells = [...document.querySelectorAll('.cell')];
    const code = cell && cell.querySelector('.cell_input pre');
    const first = code ? code.innerText.trim().split('\n')[0].slice(0, 50) : '';
    const where = cell ? `cell ${cells.indexOf(cell)} [${first}]` : 'prose';
    const text = e.tagName === 'IMG' ? '' :
                 (e.innerText || '').trim().split('\n')[0].slice(0, 50);
    return `${where} <${e.tagName.toLowerCase()}> ${text ? '"' + text + '"' : ''}`;
  };
  // 1. nothing wider than its column: scrolled sideways, or sticking out of the column
  const seen = new Set();
  document.querySelectorAll('article pre, article table, article img, article svg, ' +
                            'article .zfbook-explorer, article mjx-container, article .cell_output > *')
    .forEach(e => {
      if (!visible(e)) return;
      // the `full-width` cell tag renders as class tag_full-width
      const limit = e.closest('.full-width, .tag_full-width') ? wideRight : right;
      const r = e.getBoundingClientRect();
      const scrolls = e.scrollWidth > e.clientWidth + 1 &&
                      ['auto', 'scroll'].includes(getComputedStyle(e).overflowX);
      if ((scrolls || r.right > limit) && !seen.has(e)) {
        seen.add(e);
        const wide = Math.max(e.scrollWidth, Math.round(r.width));
        const rule = e.closest('.cell_input') ? 'code wider than the column'
                                              : 'wider than the column';
        problems.push([rule, name(e), `${wide} px in ${Math.round(limit - r.left)} px`]);
      }
    });
  // 2. plumbing: nbval markers, frozen progress bars
  const text = document.querySelector('main').innerText;
  for (const m of text.matchAll(/.{0,30}NBVAL.{0,30}/g)) problems.push(['NBVAL visible', 'page', m[0]]);
  for (const m of text.matchAll(/.{0,30}\b0%\|.{0,30}/g)) problems.push(['frozen progress bar', 'page', m[0]]);
  // 3. every image in a cell output is a numbered, captioned figure with alt text
  //    (an Explorer's view is a widget, exempt), shown at >= 90% of its natural width
  document.querySelectorAll('.cell_output img').forEach(img => {
    if (img.closest('.zfbook-explorer')) return;
    const fig = img.closest('figure');
    const number = fig && fig.querySelector('figcaption .caption-number');
    if (!number) problems.push(['figure without number and caption', name(img), '']);
    const alt = (img.getAttribute('alt') || '').trim();
    if (!alt || /^(png|jpe?g|image|figure)$/i.test(alt) || alt.includes('_images/'))
      problems.push(['image without alt text', name(img), alt]);
    const shown = img.getBoundingClientRect().width;
    if (img.naturalWidth && shown < 0.9 * img.naturalWidth)
      problems.push(['figure shrunk (text too small)', name(img),
                     `${img.naturalWidth} px drawn, ${Math.round(shown)} px shown`]);
  });
  // 4. no raw LaTeX in the prose (MathJax rendered it, or it was never LaTeX)
  const walker = document.createTreeWalker(document.querySelector('main'), NodeFilter.SHOW_TEXT);
  const skip = 'pre, code, script, style, mjx-container, .highlight, .MathJax';
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const p = n.parentElement;
    if (!p || p.closest(skip) || !visible(p)) continue;
    const t = n.textContent;
    const m = t.match(/\$[^$\s][^$]*\$|\\(frac|sum|sqrt|begin|left|right|mathrm|operatorname|alpha|beta|sigma|Delta)\b|\\\(|\\\[/);
    if (m) problems.push(['raw LaTeX', name(p), t.slice(Math.max(0, m.index - 20), m.index + 40)]);
  }
  return problems;
}"""


def screenshot_name(path: str) -> str:
    return path.replace("/", "-").replace(".html", ".png")


@pytest.mark.parametrize("path", TOC_PAGES)
def test_page_reads_well_at_1280_px(open_page, path):
    """Every page at a 1280-px window, as a reader sees it (book/WRITING.md): nothing wider
    than its column (code, outputs, tables, figures, math), no NBVAL marker, no frozen
    progress bar, every image in an output a numbered captioned figure with alt text and not
    shrunk below 90% of its drawn size, no raw LaTeX, nothing requested outside localhost.
    Writes a full-page screenshot to _build/screenshots/."""
    page = open_page(path)
    page.page.set_viewport_size(WINDOW)
    # MathJax (on pages with math) loads after the page and typesets asynchronously
    page.page.wait_for_function("() => !document.querySelector('script[src*=mathjax]') || "
                                "(window.MathJax && MathJax.version && MathJax.startup && "
                                "MathJax.startup.promise)", timeout=120_000)
    page.page.evaluate("() => window.MathJax && MathJax.startup && MathJax.startup.promise "
                       "&& MathJax.startup.promise.then(() => true)")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.page.screenshot(path=str(SCREENSHOTS / screenshot_name(path)), full_page=True)
    problems = [tuple(p) for p in page.page.evaluate(READER_CHECKS)]
    problems += [("request outside localhost", "page", url) for url in page.external_requests]
    problems += [("JavaScript error", "page", e) for e in page.errors]
    report = "\n".join(f"  {rule}: {element} {detail}" for rule, element, detail in problems)
    assert not problems, (f"{path}: {len(problems)} problems (screenshot "
                          f"_build/screenshots/{screenshot_name(path)}):\n{report}")


def test_math_renders_offline(browser, tmp_path):
    """The vendored MathJax typesets TeX from file:// with no network: SVG, no fonts."""
    mathjax = ROOT / "_vendor" / "mathjax" / "tex-svg-full.js"
    (tmp_path / "page.html").write_text(
        "<!doctype html><html><body><p>\\(\\Delta_l = \\sum_{i \\ne j} "
        "\\frac{a}{b}\\)</p>"
        f'<script src="{mathjax.as_uri()}"></script></body></html>')
    context = browser.new_context()
    try:
        page = context.new_page()
        requests = []
        page.on("request", lambda r: requests.append(r.url))
        page.goto((tmp_path / "page.html").as_uri())
        page.wait_for_selector("mjx-container svg", timeout=15000)
        assert "\\frac" not in page.locator("body").inner_text()
        assert [u for u in requests if not u.startswith(("file:", "data:"))] == []
    finally:
        context.close()


# ------------------------------------------------------------- the occlusion chapter
def test_occlusion_widget_moves_the_square_without_a_kernel(open_page):
    """book/occlusion: the occluder's x, y and size sliders each switch to the view their
    stride points to, and the slider's label follows (Fig. 7 widget)."""
    page = open_page("book/occlusion.html")
    occluder = page.explorers().filter(has=page.page.locator('input[data-name="size"]')).first
    expected = views(occluder)
    assert len(expected) >= 27                        # a grid of positions and sizes
    assert view_src(occluder) == expected[0]
    for name in ("x", "y", "size"):
        control = occluder.locator(f'input[type=range][data-name="{name}"]')
        stride = int(control.get_attribute("data-stride"))
        labels = json.loads(control.get_attribute("data-labels"))
        press_slider(occluder, name)
        assert view_src(occluder) == expected[stride] != expected[0]
        assert control.locator("xpath=..").locator("output").text_content() == labels[1]
        press_slider(occluder, name, "ArrowLeft")
        assert view_src(occluder) == expected[0]
    # all three moved at once: the view the three strides add up to
    for name in ("x", "y", "size"):
        press_slider(occluder, name)
    strides = [int(occluder.locator(f'input[data-name="{n}"]').get_attribute("data-stride"))
               for n in ("x", "y", "size")]
    assert view_src(occluder) == expected[sum(strides)]
    assert page.errors == []
    assert page.external_requests == []


def test_deconv_widget_in_deconvnet_chapter(open_page):
    """"The deconvnet": layer, feature map and image each switch the view."""
    page = open_page("book/deconvnet.html")
    explorer = page.explorers().filter(has_text="The deconvnet, one activation at a time").nth(0)
    expected = views(explorer)
    maps = json.loads(explorer.locator('input[data-name="feature"]').get_attribute("data-labels"))
    images = json.loads(explorer.locator('input[data-name="image"]').get_attribute("data-labels"))
    layers = explorer.locator('select[data-name="layer"] option').all_text_contents()
    assert layers == ["conv1", "conv2", "conv3", "conv4", "conv5"]
    assert len(expected) == len(layers) * len(maps) * len(images) == len(set(expected))
    assert all(v.startswith("data:image/jpeg;base64,") for v in expected)
    assert view_src(explorer) == expected[0]
    press_slider(explorer, "image")                          # image 2 of the grid
    assert view_src(explorer) == expected[1]
    press_slider(explorer, "feature")                        # map 2
    assert view_src(explorer) == expected[len(images) + 1]
    explorer.locator('select[data-name="layer"]').select_option("4")   # conv5
    assert view_src(explorer) == expected[4 * len(maps) * len(images) + len(images) + 1]
    outputs = explorer.locator("output").all_text_contents()
    assert outputs == [maps[1], images[1]]
    assert page.errors == []
    assert page.external_requests == []


def test_top9_widget_in_features_chapter(open_page):
    """"What the features respond to": the feature map and the rank of its activation each
    switch the linked view (image, patch, projection and class probabilities)."""
    page = open_page("book/features.html")
    explorer = page.explorers().filter(
        has_text="A map's strongest activations, with the network's verdict").nth(0)
    expected = views(explorer)
    ranks = json.loads(explorer.locator('input[data-name="rank"]').get_attribute("data-labels"))
    entries = explorer.locator('select[data-name="entry"] option').all_text_contents()
    assert entries[0].startswith("conv1 map ") and entries[-1].startswith("conv5 map ")
    assert len(expected) == len(entries) * len(ranks) == len(set(expected))
    assert all(v.startswith("data:image/jpeg;base64,") for v in expected)
    assert view_src(explorer) == expected[0]
    press_slider(explorer, "rank")                           # the 2nd rank of the grid
    assert view_src(explorer) == expected[1]
    explorer.locator('select[data-name="entry"]').select_option(str(len(entries) - 1))
    assert view_src(explorer) == expected[(len(entries) - 1) * len(ranks) + 1]
    assert page.errors == []
    assert page.external_requests == []
