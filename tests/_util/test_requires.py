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
