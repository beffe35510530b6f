"""An augmented Neural ODE (Dupont et al. 2019) packaged as an odebench model plugin."""

from __future__ import annotations

from .models import ANODEClassifier, ANODEForecaster, AugmentedODE, build_anode

__all__ = ["build_anode", "AugmentedODE", "ANODEForecaster", "ANODEClassifier"]
