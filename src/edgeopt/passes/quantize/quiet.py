"""Silencing ORT's and NNCF's console output during quantization."""

from __future__ import annotations

import contextlib
import io
import logging
import sys


# ORT's and NNCF's messages that say nothing a user can act on here: the pre-processing
# hint (the static pass runs quant_pre_process unless told not to, the dynamic pass does
# not need it), and one line per bias that is not an initializer (a Paddle2ONNX graph's
# Constant biases; the library's defaults pass takes the graph as it is, and the bias then
# stays float: hundreds of lines on zoo:ppocr-det).
_NOISE = ("consider to run pre-processing", "consider pre-processing", "to be an initializer")


class _DropNoise(logging.Filter):
    """Drops the log records of :data:`_NOISE`."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(n in message for n in _NOISE)


@contextlib.contextmanager
def quiet():
    """Silence the progress lines ORT's calibrators print to stdout, the messages of
    :data:`_NOISE` and NNCF's INFO lines; other warnings pass, on stderr."""
    hint = _DropNoise()
    root = logging.getLogger()
    root.addFilter(hint)
    # NNCF logs at INFO, one line per node whose output shape it does not know (dozens on
    # a Paddle detector): only its warnings and errors are shown.
    nncf_logger = logging.getLogger("nncf")
    level = nncf_logger.level
    nncf_logger.setLevel(max(level, logging.WARNING))
    # NNCF's handler writes to the sys.stdout it saw at import, which redirect_stdout does
    # not reach: its warnings would land in a piped table or a --json document.
    # Swapped without StreamHandler.setStream, which flushes the old stream first: that
    # stream may be closed (under pytest, the captured stdout of the test that imported NNCF).
    streams = [(h, h.stream) for h in nncf_logger.handlers
               if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)]
    for handler, _ in streams:
        handler.stream = sys.stderr
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        root.removeFilter(hint)
        nncf_logger.setLevel(level)
        for handler, stream in streams:
            handler.stream = stream
