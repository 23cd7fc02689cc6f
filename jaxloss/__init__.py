"""jaxloss: differentiable classification losses and divergences for JAX."""

from importlib import metadata as _metadata

from . import testing as testing
from ._checks import checked as checked
from ._cross_entropy import categorical_cross_entropy as categorical_cross_entropy
from ._cross_entropy import softmax_cross_entropy as softmax_cross_entropy
from ._cross_entropy import (
    softmax_cross_entropy_with_integer_labels as softmax_cross_entropy_with_integer_labels,
)
from ._cross_entropy import (
    sparse_categorical_cross_entropy as sparse_categorical_cross_entropy,
)

try:
    __version__ = _metadata.version("jaxloss")
except _metadata.PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0+unknown"
