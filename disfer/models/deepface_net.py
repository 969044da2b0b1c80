"""DeepFace's emotion CNN, through the `deepface` package's own PyTorch definition.

We use deepface's `EmotionModel` class (so the architecture is theirs, not a copy) and its
weights file `facial_expression_model_weights.pth` under `$DEEPFACE_HOME/.deepface/weights/`,
where `DeepFace.analyze` itself looks. Only the PyTorch backend is imported; TensorFlow never is.

Preprocessing: the network was trained on 48x48 grey FER-2013 faces scaled to [0, 1], which is
what our faces already are. `DeepFace.analyze(..., detector_backend='skip')` additionally
resizes the face to 224x224 and back to 48x48 on its way in; that round trip only resamples
the pixels, so we skip it (benchmarks/bench_predict.py reports how far the two paths differ).
"""

from __future__ import annotations

import os

import torch
from torch import nn

from disfer.models.base import FER2013_ORDER
from disfer.models.locations import WEIGHTS_FILE, deepface_weights_dir
from disfer.models.registry import FAMILIES
from disfer.models.torch_base import FERModel

# Where the weights live is decided torch-free (locations); these stay importable from here.
__all__ = ["WEIGHTS_FILE", "DeepFaceEmotion", "deepface_weights_dir"]


def _emotion_model_class() -> type[nn.Module]:
    os.environ.setdefault("DEEPFACE_BACKEND_ENGINE", "pytorch")
    from deepface.models.demography.pytorch.Emotion import EmotionModel

    class EmotionLogits(EmotionModel):
        """deepface's network with the final softmax left off, so it returns logits.

        Same modules and state-dict keys as EmotionModel; only forward's last line differs.
        """

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.pool_1(self.relu(self.conv_1(x)))
            x = self.relu(self.conv_2(x))
            x = self.pool_2(self.relu(self.conv_3(x)))
            x = self.relu(self.conv_4(x))
            x = self.pool_3(self.relu(self.conv_5(x)))
            x = torch.flatten(x, start_dim=1)
            x = self.dropout_1(self.relu(self.fc_1(x)))
            x = self.dropout_2(self.relu(self.fc_2(x)))
            return self.fc_3(x)

    return EmotionLogits


class DeepFaceEmotion(FERModel):
    spec = FAMILIES["deepface"]
    labels = FER2013_ORDER
    head_module = "fc_3"
    exportable = True

    def build(self) -> nn.Module:
        return _emotion_model_class()()

    def prepare(self, x: torch.Tensor, exact: bool = True) -> torch.Tensor:
        return (x * (1.0 / 255.0)).contiguous(memory_format=torch.channels_last)
