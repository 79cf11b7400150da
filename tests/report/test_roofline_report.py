"""roofline --out's report.html, from a recorded zoo:seednet roofline (tests/fixtures/
roofline_seednet.json: 20 profiled runs on ONNX Runtime under this machine's measured roofs)."""

from __future__ import annotations

import json

import pytest

from edgeopt.errors import EdgeoptError
from edgeopt.report.doc import Alert, Image
from edgeopt.report.html import render_html
from edgeopt.report.roofline_report import layer_table, roofline_document, roofline_from_json

from support import FIXTURES


@pytest.fixture()
def recorded() -> dict:
    return json.loads((FIXTURES / "roofline_seednet.json").read_text())


def test_layer_rows_mark_the_slowest_the_layers_above_their_roof_and_the_fused(recorded):
    roof = roofline_from_json(recorded)
    assert roof.to_dict() == recorded  # read back whole
    table = layer_table(roof)
    marks = {r[0]: table.mark(i) for i, r in enumerate(table.rows)}
    slowest = max(recorded["rows"], key=lambda r: r["ms"])["name"]
    assert [n for n, m in marks.items() if m and m.kind == "chosen"] == [slowest]
    # Cache-aware: above the roof of the layer's level (the Gemms beat DRAM's from L2/L3).
    above = {r["name"] for r in recorded["rows"] if (r["level_roof_pct"] or 0) > 100} - {slowest}
    assert {r["name"] for r in recorded["rows"] if (r["roof_pct"] or 0) > 100} - {slowest} - above
    assert {n for n, m in marks.items() if m and m.kind == "rejected"} == above
    assert slowest in {r.name for r in roof.above_roof}
    assert marks[slowest].reason.startswith("the layer taking the most time; above its roof")  # 107%: said too
    assert all(marks[r["name"]].kind == "muted" for r in recorded["rows"] if r["status"].startswith("fused"))
    assert len(table.columns) == 12  # cache-aware: the level columns too


def test_the_page_embeds_the_plot_and_flags_layers_above_the_roof(recorded, tmp_path):
    from PIL import Image as PILImage

    png = tmp_path / "roofline.png"
    PILImage.new("RGB", (5, 5)).save(png)
    doc = roofline_document(roofline_from_json(recorded), png)
    above = sum(1 for r in recorded["rows"] if (r["level_roof_pct"] or 0) > 100)
    assert above > 0
    alerts = [b.text for b in doc.blocks if isinstance(b, Alert)]
    assert alerts == [f"{above} layers measured above the roof (up to 107% of it): the roof (peak GFLOP/s or "
                      "bandwidth) was under-measured; re-run `edgeopt machine`."]
    assert [b.path for b in doc.blocks if isinstance(b, Image)] == [png]
    assert 'src="data:image/png;base64,' in render_html(doc)


def test_a_file_that_is_not_a_roofline_is_refused():
    with pytest.raises(EdgeoptError, match="not an edgeopt roofline.json .* pass the file `edgeopt roofline --out`"):
        roofline_from_json({"model": "x"})
