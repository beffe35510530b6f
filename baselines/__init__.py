"""Built-in models: Neural ODE, ResNet, LM-ResNet and the floors."""

from .floors import build_linear, build_majority, build_persistence
from .lm_resnet import build_lm_resnet
from .neural_ode import build_neural_ode
from .resnet import build_resnet

__all__ = [
    "build_neural_ode",
    "build_resnet",
    "build_lm_resnet",
    "build_persistence",
    "build_majority",
    "build_linear",
]
