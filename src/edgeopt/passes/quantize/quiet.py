"""Silencing ORT's and NNCF's console output during quantization."""

from __future__ import annotations

import contextlib
import io
import logging


class _DropPreprocessHint(logging.Filter):
    """Drops ORT's "Please consider to run pre-processing" warning: the static pass runs
    quant_pre_process unless told not to, and the dynamic pass does not need it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "consider to run pre-processing" not in record.getMessage() and (
            "consider pre-processing" not in record.getMessage())


@contextlib.contextmanager
def quiet():
    """Silence the progress lines ORT's calibrators print to stdout and ORT's
    pre-processing hint; other warnings pass."""
    hint = _DropPreprocessHint()
    root = logging.getLogger()
    root.addFilter(hint)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        root.removeFilter(hint)
