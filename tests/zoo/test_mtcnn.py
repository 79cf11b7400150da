"""``zoo:mtcnn``, the name ``edgeopt stream`` uses for its face detector, is a zoo name:
``info`` and the other commands take it, as MTCNN's P-Net (issue 18)."""

from __future__ import annotations

import pytest

from edgeopt import zoo
from edgeopt.stream.run import MODELS

from support import installed, run_cli


def test_every_stream_model_is_a_zoo_name():
    for name in MODELS:
        assert zoo.get(name.removeprefix("zoo:")).task == "detection"
    entry = zoo.get("mtcnn")
    assert "P-Net" in entry.description and "stream" in entry.description
    assert entry.default_shape == zoo.get("mtcnn-pnet").default_shape


@pytest.mark.skipif(not installed("facenet-pytorch"), reason="pip install --no-deps facenet-pytorch==2.6.0")
def test_zoo_mtcnn_is_the_p_net_and_info_describes_it(monkeypatch, capsys):
    import hashlib

    from edgeopt.zoo import mtcnn

    code, out, err = run_cli(monkeypatch, capsys, "info", "zoo:mtcnn")
    assert code == 0, err
    # P-Net: its weights, its input of any size (default 288x384), its two output maps.
    pnet_sha = hashlib.sha256(mtcnn.weights_file("pnet").read_bytes()).hexdigest()
    assert out.removeprefix("# ").startswith("zoo:mtcnn") and pnet_sha in out.replace("\n", "")  # piped: "# " notes
    assert "Nx3x288x384" in out and "output probability: 1x2x139x187" in out
    assert "the cascade P-Net -> R-Net -> O-Net" in out and "its P-Net" in out  # info says which net it is
