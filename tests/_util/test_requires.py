"""Packages beyond the core: an import attempt, or one line with the install command."""

from __future__ import annotations

import sys

import pytest

from edgeopt._util.requires import require
from edgeopt.errors import EdgeoptError


def test_an_installed_package_is_returned():
    assert require("json", "reading").dumps([]) == "[]"


def test_a_missing_package_names_the_install_command(monkeypatch):
    import nncf  # noqa: F401 - imported before it is blocked: the check must not trust sys.modules

    monkeypatch.setitem(sys.modules, "nncf", None)
    with pytest.raises(EdgeoptError) as e:
        require("nncf", "pass int8-nncf")
    assert str(e.value) == "pass int8-nncf needs nncf, which is not installed: pip install 'nncf>=2.14'"


def test_a_package_that_fails_to_import_says_why(monkeypatch, tmp_path):
    (tmp_path / "broken_pkg.py").write_text("import not_a_module_anywhere\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(EdgeoptError, match=r"^--x needs broken_pkg, which fails to import \(ModuleNotFoundError: "
                                           r".*not_a_module_anywhere.*\): pip install broken_pkg$"):
        require("broken_pkg", "--x")


def test_a_library_the_install_left_out_names_its_extra():
    from edgeopt._util.requires import extra_for, missing_extra_line

    assert extra_for("onnxruntime.capi") == "ort" and extra_for("distributed") == "device"
    assert extra_for("torch.nn") == "all" and extra_for("matplotlib") == "all"
    assert extra_for("numpy") is None and extra_for("edgeopt.bench") is None
    line = missing_extra_line(ModuleNotFoundError("No module named 'torch'", name="torch"))
    assert line == "this needs torch, which this install of edgeopt does not have: pip install 'edgeopt[all]'"
    assert missing_extra_line(ModuleNotFoundError("No module named 'numpy'", name="numpy")) is None


def test_the_cli_turns_a_missing_extra_into_one_line(monkeypatch, capsys):
    import edgeopt

    from support import assert_one_line_error, run_cli

    def lean_load(*a, **kw):  # what loading a zoo model does where torch is not installed
        import torch_is_not_here  # noqa: F401
    monkeypatch.setattr(edgeopt, "load_model", lean_load)
    monkeypatch.setitem(sys.modules, "torch_is_not_here", None)
    code, _, err = run_cli(monkeypatch, capsys, "info", "zoo:seednet")
    assert_one_line_error(code, err, "this needs torch_is_not_here, which this install of edgeopt does not have: "
                                     "pip install 'edgeopt[all]'")
    with pytest.raises(ModuleNotFoundError):  # --debug shows the traceback instead
        run_cli(monkeypatch, capsys, "--debug", "info", "zoo:seednet")
