"""NumPy reference implementations of recurrent networks and hand-written BPTT.

Time-major arrays ``(T, B, D)`` inside; PyTorch's parameter names, shapes and gate order.
Submodules: ``cells`` (the cell registry: one module and one ``CellSpec`` per cell),
``network`` (forward/backward engine), ``losses``, ``schemes``, ``truncation``, ``pairsum``,
``randomized``, ``stateful``, ``clipping``, ``clip_frameworks``, ``finite_diff``,
``fd_model``, ``jacobians``, ``profiles``, ``architectures``, ``validation``.
"""

from .activations import ACTIVATIONS, GAMMA
from .architectures import (
    encoder_decoder_backward,
    encoder_decoder_forward,
    free_running,
    generation_backward,
    pseudo_matrix_forward,
    residual_backward,
    residual_forward,
    teacher_forced,
)
from .clipping import (
    ClipResult,
    NonFiniteNorm,
    adjoint_clipping,
    clip_after_backward,
    clip_by_global_norm,
    clip_by_value,
    clip_layerwise,
    clip_per_tensor,
    global_norm,
    tensor_norm,
)
from .cells import CELLS, CellSpec, cell_spec
from .config import RecurrentConfig, init_params
from .fd_model import NetworkLoss
from .finite_diff import FiniteDifference, central_difference, complex_step, directional_derivative, richardson
from .jacobians import (
    StepJacobians,
    chain_jacobians,
    elman_bound,
    recurrent_sigma_max,
    singular_values,
    spectral_norm,
    step_jacobians,
    step_norm_bound,
)
from .losses import LossResult, LossSpec, loss_and_grad
from .network import ForwardResult, backward, compose_crossings, forward
from .pairsum import PairContributions, pair_contributions, pair_sum
from .profiles import GradientProfile, gradient_profile, gradient_statistics, history_statistics, train_sgd
from .randomized import ExactMoments, exact_moments, independent_moments, randomized_backward, sample_xi
from .stateful import from_stateful_batches, stateful_backward, to_stateful_batches
from .schemes import (
    Full,
    Randomized,
    RandomizedHistory,
    RandomizedScheme,
    SlidingWindow,
    Subsequence,
    TruncationScheme,
    WilliamsPeng,
    Window,
    window_starts,
)
from .truncation import TruncationResult, truncated_backward
from .validation import InvalidArgument

__all__ = [
    "ACTIVATIONS",
    "CELLS",
    "GAMMA",
    "CellSpec",
    "ClipResult",
    "ExactMoments",
    "FiniteDifference",
    "ForwardResult",
    "Full",
    "GradientProfile",
    "InvalidArgument",
    "LossResult",
    "LossSpec",
    "NetworkLoss",
    "NonFiniteNorm",
    "PairContributions",
    "Randomized",
    "RandomizedHistory",
    "RandomizedScheme",
    "RecurrentConfig",
    "SlidingWindow",
    "StepJacobians",
    "Subsequence",
    "TruncationResult",
    "TruncationScheme",
    "WilliamsPeng",
    "Window",
    "adjoint_clipping",
    "backward",
    "cell_spec",
    "central_difference",
    "chain_jacobians",
    "clip_after_backward",
    "clip_by_global_norm",
    "clip_by_value",
    "clip_layerwise",
    "clip_per_tensor",
    "complex_step",
    "compose_crossings",
    "directional_derivative",
    "elman_bound",
    "encoder_decoder_backward",
    "encoder_decoder_forward",
    "exact_moments",
    "forward",
    "free_running",
    "from_stateful_batches",
    "generation_backward",
    "global_norm",
    "gradient_profile",
    "gradient_statistics",
    "history_statistics",
    "independent_moments",
    "init_params",
    "loss_and_grad",
    "pair_contributions",
    "pair_sum",
    "pseudo_matrix_forward",
    "randomized_backward",
    "recurrent_sigma_max",
    "residual_backward",
    "residual_forward",
    "richardson",
    "sample_xi",
    "singular_values",
    "spectral_norm",
    "stateful_backward",
    "step_jacobians",
    "step_norm_bound",
    "teacher_forced",
    "tensor_norm",
    "to_stateful_batches",
    "train_sgd",
    "truncated_backward",
    "window_starts",
]
