"""edgeopt: make trained CNNs run fast and small on low-end CPUs, measured on this machine."""

from .errors import EdgeoptError
from .model import InputSpec, Model, load_model
from .preprocess import Preprocess

__version__ = "0.1.0"
__all__ = ["EdgeoptError", "InputSpec", "Model", "Preprocess", "load_model", "__version__"]
