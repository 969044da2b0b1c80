"""FER models behind one interface: `load_model(id).predict_proba(faces) -> (N, 7)`.

Importing this package (and listing models) does not import torch; `load_model` does, through
the family's adapter. The adapters' torch base class is `disfer.models.torch_base.FERModel`.
"""

from disfer.models.base import ModelSpec
from disfer.models.registry import (
    FAMILIES,
    ModelInfo,
    list_models,
    load_model,
    register_model,
    register_variant,
)

__all__ = ["FAMILIES", "ModelInfo", "ModelSpec", "list_models", "load_model", "register_model",
           "register_variant"]
