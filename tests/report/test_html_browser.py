"""The four HTML reports (optimize grid, optimize --search, suite, roofline) in a real
headless browser: Chromium (Debian's package, driven by Playwright; nothing downloaded).
Each page loads with no console error, renders every image from its embedded bytes,
fetches nothing, shows its chosen row highlighted and no Markdown mark as text.

The pages are built from real recorded data (benchmarks/html_screens.py:build_reports)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from support import FIXTURES

_SCREENS = Path(__file__).resolve().parents[2] / "benchmarks" / "html_screens.py"
_spec = importlib.util.spec_from_file_location("html_screens", _SCREENS)
html_screens = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(html_screens)

CHROMIUM = html_screens.find_chromium()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary (apt-get install chromium)")

SUITE = html_screens.REPO / "benchmarks" / "results" / "suite-mobile" / "suite.json"
# What each report's first chosen row says (recorded data: the suite's fastest on
# mobilenet-v1, 4.75 ms; the roofline's slowest layer, the 16->48 6x6 conv with 73% of the MACs).
CHOSEN = {"optimize": "int8-nncf@openvino t2 b1", "search": "int8-nncf-1fp@openvino t1 b1",
          "suite": "openvino t2 int8", "roofline": "/features/features.3/Conv"}


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict[str, Path]:
    return html_screens.build_reports(tmp_path_factory.mktemp("reports"), suite_json=SUITE,
                                      roofline_json=FIXTURES / "roofline_seednet.json")


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield b
        b.close()


def _open(browser, page_file: Path):
    """The page loaded, with the console errors, page errors and every request other
    than the page itself (each aborted) it caused."""
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    seen = {"console": [], "errors": [], "requests": []}
    page.on("console", lambda m: seen["console"].append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: seen["errors"].append(str(e)))
    own = page_file.as_uri()

    def route(r):
        if r.request.url == own:
            r.continue_()
        else:
            seen["requests"].append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.goto(own, wait_until="load")
    return page, seen


@pytest.mark.parametrize("name", list(CHOSEN))
def test_report_in_a_browser(browser, reports, name):
    page, seen = _open(browser, reports[name])
    try:
        assert seen == {"console": [], "errors": [], "requests": []}
        images = page.eval_on_selector_all(
            "img", "ims => ims.map(i => [i.src.slice(0, 22), i.complete, i.naturalWidth,"
                   " i.getBoundingClientRect().width, i.parentElement.getBoundingClientRect().width])")
        assert images, "no plot in the report"
        for src, complete, natural, shown, room in images:
            assert src == "data:image/png;base64," and complete and natural > 100
            # At its own size, or the page's full width when larger: the legend stays legible.
            assert shown == pytest.approx(min(natural, room), abs=3)
        chosen = page.locator("tr.chosen")
        assert chosen.count() >= 1
        assert CHOSEN[name] in chosen.first.inner_text()
        plain = page.eval_on_selector("tbody tr:not([class]) td", "td => getComputedStyle(td).backgroundColor")
        marked = chosen.first.evaluate("tr => getComputedStyle(tr.cells[1]).backgroundColor")
        assert marked not in (plain, "rgba(0, 0, 0, 0)")  # highlighted
        text = page.inner_text("body")
        assert "`" not in text and "**" not in text
    finally:
        page.close()


def test_rejected_rows_carry_their_reason_and_the_slow_runtime_is_named(browser, reports):
    page, _ = _open(browser, reports["optimize"])
    try:
        rejected = page.locator("tr.rejected")
        assert rejected.count() > 0
        for i in range(rejected.count()):
            row = rejected.nth(i)
            reason = row.get_attribute("title")
            assert reason and reason in row.inner_text().replace("\n", " ")  # the tooltip is the row's reason
        # The grid's int8-nncf model: 1.352 ms per image on OpenVINO, 6.520 ms on ONNX Runtime.
        warning = page.locator(".warning").first.inner_text()
        assert "this model runs 0.21x as fast on ONNX Runtime (6.520 ms vs 1.352 ms per image): deploy it " \
               "with OpenVINO" in warning
        assert "pip install openvino==2026.4.1" in page.inner_text("body")
    finally:
        page.close()
