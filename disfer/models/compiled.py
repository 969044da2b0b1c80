"""torch.compile with a safe fallback, for the small networks where it pays off on the CPU.

The mini-Xception is many small depthwise/pointwise convolutions; eager PyTorch spends most of its
time dispatching them, and Inductor's fused kernels run it several times faster. Compiling costs
tens of seconds the first time; Inductor caches the result on disk (FX graph cache), so later runs
start in seconds. `predict_store` puts that cache in the store's model folder (`inductor/`), not in
Inductor's default <tmp>/torchinductor_<user>. Shapes are kept static (callers pad the last batch)
so one compilation serves a whole run. The weights are frozen into the compiled code: compile only
once they are final (a fresh model for inference, never one being trained). Set DISFER_COMPILE=0
to switch it off.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable

import torch
import torch._inductor.config
from torch import nn

log = logging.getLogger(__name__)


def compile_enabled() -> bool:
    return os.environ.get("DISFER_COMPILE", "1") not in ("0", "false", "no")


def compile_network(network: nn.Module) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """A compiled forward of `network`, or None where compilation is off or unavailable."""
    if not compile_enabled():
        return None
    try:
        compiled = torch.compile(network, dynamic=False)
    except Exception as err:  # no compiler toolchain, unsupported platform, ...
        log.warning("torch.compile unavailable (%s); running eagerly", err)
        return None
    state = {"ok": None}

    def forward(x: torch.Tensor) -> torch.Tensor:
        # The first call compiles; if that fails (e.g. no C++ compiler), fall back for good.
        if state["ok"] is False:
            return network(x)
        try:
            # Freezing folds BatchNorm into the convolutions and prepacks weights for oneDNN
            # (about 1.4x on the CPU); the weights become constants of the compiled code.
            with warnings.catch_warnings(), torch._inductor.config.patch(freezing=state["ok"] is None):
                warnings.simplefilter("ignore")
                y = compiled(x)
            state["ok"] = True
            return y
        except Exception as err:
            if state["ok"]:
                raise
            log.warning("torch.compile failed (%s); running eagerly", str(err).splitlines()[0])
            state["ok"] = False
            return network(x)

    return forward
