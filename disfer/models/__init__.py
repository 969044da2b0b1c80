"""FER models behind one interface: `load_model(id).predict_proba(faces) -> (N, 7)`."""

from disfer.models.base import FERModel, resolve_device
from disfer.models.registry import FAMILIES, ModelInfo, list_models, load_model, register_model

__all__ = ["FAMILIES", "FERModel", "ModelInfo", "list_models", "load_model", "register_model",
           "resolve_device"]
