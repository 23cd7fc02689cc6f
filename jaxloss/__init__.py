"""jaxloss: differentiable classification losses and divergences for JAX."""

from importlib import metadata as _metadata

from . import diagnostics as diagnostics
from . import info as info
from . import testing as testing
from ._checks import checked as checked
from ._cross_entropy import categorical_cross_entropy as categorical_cross_entropy
from ._cross_entropy import poly_loss_cross_entropy as poly_loss_cross_entropy
from ._cross_entropy import safe_softmax_cross_entropy as safe_softmax_cross_entropy
from ._cross_entropy import smooth_labels as smooth_labels
from ._cross_entropy import softmax_cross_entropy as softmax_cross_entropy
from ._cross_entropy import (
    softmax_cross_entropy_with_integer_labels as softmax_cross_entropy_with_integer_labels,
)
from ._cross_entropy import (
    sparse_categorical_cross_entropy as sparse_categorical_cross_entropy,
)
from ._dice import binary_dice_loss as binary_dice_loss
from ._dice import dice_loss as dice_loss
from ._dice import multiclass_generalized_dice_loss as multiclass_generalized_dice_loss
from ._divergence import entropy as entropy
from ._divergence import js_divergence as js_divergence
from ._divergence import kl_divergence as kl_divergence
from ._divergence import kl_divergence_with_logits as kl_divergence_with_logits
from ._divergence import reverse_kl_divergence as reverse_kl_divergence
from ._focal import categorical_focal_loss as categorical_focal_loss
from ._focal import sigmoid_focal_loss as sigmoid_focal_loss
from ._focal import softmax_focal_loss as softmax_focal_loss
from ._linear import linear_cross_entropy as linear_cross_entropy
from ._log_probs import convex_kl_divergence as convex_kl_divergence
from ._log_probs import generalized_kl_divergence as generalized_kl_divergence
from ._log_probs import kl_divergence_with_log_targets as kl_divergence_with_log_targets
from ._log_probs import nll_loss as nll_loss
from ._sigmoid import binary_cross_entropy as binary_cross_entropy
from ._sigmoid import sigmoid_binary_cross_entropy as sigmoid_binary_cross_entropy
from ._sigmoid import sigmoid_cross_entropy as sigmoid_cross_entropy

try:
    __version__ = _metadata.version("jaxloss")
except _metadata.PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0+unknown"
