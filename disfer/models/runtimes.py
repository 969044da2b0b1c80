"""CPU inference runtimes: the network exported once to ONNX, run by ONNX Runtime or OpenVINO.

On the CPU the small networks (mini-Xception, DeepFace) run faster in a dedicated inference
runtime than in PyTorch, eager or compiled. The adapter's whole inference graph (uint8 faces ->
preprocessing -> network -> probabilities in `EMOTIONS` order, `FERModel.inference_graph`) is
exported with `torch.onnx.export` and cached beside the store, in the store's model folder
(`disfer.models.store_files.checkpoint_folder`, `exports/`), named by the weights fingerprint
that also keys the cached predictions. OpenVINO reads the same ONNX file,
so there is one cached export for both runtimes. PyTorch stays the runtime for GPUs, training,
saliency and the networks not exported (RMN).

A fresh export is checked before it is cached: its probabilities on a fixed probe batch must
agree with the eager PyTorch model to `AGREEMENT_TOLERANCE`, else it is an error, never used. Its
file name ends in its own sha256 (`<family>.<weights fingerprint>.g<graph version>.<sha256>.onnx`,
16 hex digits each), and a cached file is trusted only when its content still has that sha256 and
the weights fingerprint recorded inside it (ONNX metadata, read by the runtime) is the model's;
a damaged, stale or foreign file is removed and the network exported again. (Checking each load
against eager instead would cost a cold torch forward, seconds on a busy CPU.)

This module imports no torch, onnx or runtime at import time (the CLI reads `RUNTIME_CHOICES`
to build its options); each is imported inside the function that needs it.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import importlib.util
import io
import logging
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from disfer.emotions import EMOTIONS
from disfer.errors import ConfigError
from disfer.images import SIZE
from disfer.models.store_files import checkpoint_folder
from disfer.outfiles import safe_name, write_bytes

if TYPE_CHECKING:
    import torch


class FERModel(Protocol):
    """What this module uses of a model (disfer.models.torch_base.FERModel, which imports this
    module to run its exports: named here as a protocol so the two do not import each other)."""

    model_id: str
    family: str
    exportable: bool
    device: torch.device

    @property
    def fingerprint(self) -> str: ...

    def inference_graph(self) -> torch.nn.Module: ...

    def predict_proba(self, faces: np.ndarray, batch: int = 256) -> np.ndarray: ...

log = logging.getLogger(__name__)

AUTO = "auto"
TORCH = "torch"
ONNXRUNTIME = "onnxruntime"
OPENVINO = "openvino"
EXPORTED_RUNTIMES: tuple[str, ...] = (ONNXRUNTIME, OPENVINO)   # the runtimes that run the ONNX export
RUNTIME_CHOICES: tuple[str, ...] = (AUTO, TORCH, *EXPORTED_RUNTIMES)

# The CPU default, chosen by benchmarks/bench_predict.py --sweep: bare forward (uint8 faces ->
# probabilities), img/s summed over 3 interleaved rounds of 4,096 FER-2013 test faces on 2 heavily
# shared cores (load 5-7: only the ratios mean anything), every runtime within 1.2e-6 of eager;
# ranges are over batches of 64-1024:
#   mini-Xception  eager 67, torch.compile 202, onnxruntime 477-659, openvino 758-880
#   DeepFace       eager 270, torch.compile 351, onnxruntime 558-839, openvino 570-748
# OpenVINO is clearly the fastest on the mini-Xception (1.3-1.8x ONNX Runtime, 4x torch.compile)
# and level with ONNX Runtime on DeepFace, so it is the default; both read the same export.
CPU_DEFAULT_RUNTIME = OPENVINO
# Images per call of each runtime: among the best of 64-1024 for both networks in the same run
# (the differences between batches are within that machine's noise).
RUNTIME_BATCH: dict[str, int] = {ONNXRUNTIME: 256, OPENVINO: 1024}
# Every runtime's probabilities must match the eager PyTorch model's to this (max abs difference).
AGREEMENT_TOLERANCE = 1e-5
# The probe batch a fresh export is checked on: fixed random faces and two flat ones.
PROBE_FACES = 16
EXPORTS_FOLDER = "exports"
# Bump when `FERModel.inference_graph` changes what it computes, so older exports are not looked up.
GRAPH_VERSION = 1
FINGERPRINT_KEY = "disfer_weights_fingerprint"
INPUT_NAME, OUTPUT_NAME = "faces", "probabilities"
ONNX_OPSET = 18


def import_openvino():
    """`import openvino`, without its telemetry.

    Importing the package (its `tools.ovc`) sends a "general_import" event to Google Analytics
    from a forked process, and writes a client id and a usage counter to ~/intel/, unless a consent
    file there says no: a network call from a research server and files outside any folder the user
    chose. Every openvino module imports `openvino_telemetry` under `except ImportError` and falls
    back to its own no-op stub, so marking that package as absent is the off switch; nothing of
    OpenVINO's inference uses it.
    """
    sys.modules.setdefault("openvino_telemetry", None)  # None: `import openvino_telemetry` fails
    import openvino

    return openvino


def installed(runtime: str) -> bool:
    return runtime == TORCH or importlib.util.find_spec(runtime) is not None


def choose_runtime(requested: str, model: FERModel) -> str:
    """The runtime that will run `model`: `requested`, or for 'auto' the CPU default where the
    model is exported on the CPU and its runtime installed, else torch. ConfigError for a runtime
    that cannot run this model here."""
    if requested not in RUNTIME_CHOICES:
        raise ConfigError(f"unknown runtime {requested!r} (expected one of {', '.join(RUNTIME_CHOICES)})")
    on_cpu = model.device.type == "cpu"
    if requested == AUTO:
        return CPU_DEFAULT_RUNTIME if on_cpu and model.exportable and installed(CPU_DEFAULT_RUNTIME) else TORCH
    if requested == TORCH:
        return TORCH
    if not on_cpu:
        raise ConfigError(f"runtime {requested} runs on the CPU; on {model.device} use --runtime torch (or auto)")
    if not model.exportable:
        raise ConfigError(f"{model.model_id}: the {model.family} network runs on torch only")
    if not installed(requested):
        raise ConfigError(f"runtime {requested} is not installed (pip install {requested})")
    return requested


def export_folder(store) -> Path:
    """`<store folder>/models/<store_id>/exports`: where this store caches exported networks,
    beside its fine-tuned checkpoints."""
    return checkpoint_folder(store) / EXPORTS_FOLDER


def cached_export(store, model: FERModel) -> Path | None:
    """A cached export of `model` in `store`'s folder where there is one (unchecked), else None.
    Writes nothing (a store without an id yet has no exports)."""
    folder = checkpoint_folder(store, create=False)
    return next(_candidates(folder / EXPORTS_FOLDER, model), None) if folder is not None else None


def export_name(model: FERModel, data: bytes) -> str:
    """A cached export's file name: the family (its graph), the weights fingerprint, the graph
    version, then the export's own sha256 (16 hex digits), which a load checks."""
    return f"{_export_prefix(model)}{hashlib.sha256(data).hexdigest()[:16]}.onnx"


def _export_prefix(model: FERModel) -> str:
    return f"{safe_name(model.family, 'model family')}.{model.fingerprint[:16]}.g{GRAPH_VERSION}."


def _candidates(folder: Path, model: FERModel) -> Iterator[Path]:
    """The files in `folder` named as exports of `model`'s weights."""
    if folder.is_dir():
        yield from sorted(folder.glob(glob.escape(_export_prefix(model)) + "*.onnx"))


def probe_faces() -> np.ndarray:
    """The fixed batch an export is checked on: random faces plus an all-black and an all-white one."""
    faces = np.random.default_rng(20261203).integers(0, 256, (PROBE_FACES, SIZE, SIZE), dtype=np.uint8)
    faces[0], faces[1] = 0, 255
    return faces


def export_onnx(model: FERModel) -> bytes:
    """`model`'s inference graph as ONNX bytes, any batch size, its weights fingerprint inside."""
    import torch  # only to export

    graph = model.inference_graph().eval()
    example = torch.from_numpy(probe_faces())
    # The exporter prints its progress and logs about its own internals ("torchvision is not
    # installed"); neither is for a user.
    exporter_log = logging.getLogger("torch.onnx")
    level = exporter_log.level
    exporter_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            program = torch.onnx.export(graph, (example,), dynamo=True, opset_version=ONNX_OPSET,
                                        input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                                        dynamic_shapes=({0: torch.export.Dim("batch")},), optimize=True)
    finally:
        exporter_log.setLevel(level)
    proto = program.model_proto
    proto.metadata_props.add(key=FINGERPRINT_KEY, value=model.fingerprint)
    return proto.SerializeToString()


class ExportedNetwork:
    """An ONNX export run by ONNX Runtime or OpenVINO: uint8 faces in, probabilities out."""

    def __init__(self, runtime: str, data: bytes, threads: int):
        self.runtime = runtime
        self.batch = RUNTIME_BATCH[runtime]
        # Each runtime reads the ONNX metadata itself (importing the `onnx` package costs seconds).
        if runtime == ONNXRUNTIME:
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            options.log_severity_level = 3  # warnings about unused initialisers are not a user's
            session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
            self.recorded_fingerprint = session.get_modelmeta().custom_metadata_map.get(FINGERPRINT_KEY)
            self._run = lambda faces: session.run(None, {INPUT_NAME: faces})[0]
        elif runtime == OPENVINO:
            ov = import_openvino()
            core = ov.Core()
            network = core.read_model(data, b"")
            key = ["framework", FINGERPRINT_KEY]  # where OpenVINO keeps ONNX metadata
            self.recorded_fingerprint = (network.get_rt_info(key).astype(str)
                                         if network.has_rt_info(key) else None)
            # f32 explicitly: on CPUs with bf16 units OpenVINO would otherwise compute in bf16,
            # far outside the agreement tolerance.
            compiled = core.compile_model(network, "CPU", {"INFERENCE_NUM_THREADS": threads,
                                                           "INFERENCE_PRECISION_HINT": "f32"})
            request = compiled.create_infer_request()
            self._run = lambda faces: request.infer({0: faces})[0]
        else:
            raise ConfigError(f"runtime {runtime!r} does not run ONNX exports")

    def forward(self, faces: np.ndarray) -> np.ndarray:
        """One batch, as the runtime gives it (the bare forward the benchmark times)."""
        return self._run(faces)

    def predict_proba(self, faces: np.ndarray) -> np.ndarray:
        """(N, 7) float32 probabilities in `EMOTIONS` order, `self.batch` faces per call."""
        arr = np.ascontiguousarray(faces)
        out = np.empty((len(arr), len(EMOTIONS)), dtype=np.float32)
        for start in range(0, len(arr), self.batch):
            out[start:start + self.batch] = self._run(arr[start:start + self.batch])
        return out


def disagreement(model: FERModel, exported: ExportedNetwork) -> float:
    """Max abs difference of the export's probabilities from the eager model's on the probe batch."""
    faces = probe_faces()
    return float(np.abs(exported.predict_proba(faces) - model.predict_proba(faces)).max())


def load_exported(model: FERModel, runtime: str, folder: Path, threads: int) -> ExportedNetwork:
    """`model` in `runtime`, from an export cached in `folder` when one checks out, else exported
    (and cached) now. ConfigError when a fresh export disagrees with the eager model."""
    for path in _candidates(folder, model):
        found = _cached(model, runtime, path, threads)
        if isinstance(found, ExportedNetwork):
            return found
        log.warning("%s: %s; exporting again", path, found)
        path.unlink(missing_ok=True)  # a damaged file of ours (or a link planted in its place)
    data = export_onnx(model)
    found = _check(model, runtime, data, threads, probe=True)
    if not isinstance(found, ExportedNetwork):
        raise ConfigError(f"{model.model_id}: the {runtime} export {found}; use --runtime torch")
    write_bytes(folder, export_name(model, data), data)
    return found


def _cached(model: FERModel, runtime: str, path: Path, threads: int) -> ExportedNetwork | str:
    """A cached export loaded, or why it cannot be trusted. Its content was checked against the
    eager model when it was written; the sha256 in its name shows it is still that content."""
    if path.is_symlink() or not path.is_file():
        return "is not a regular file"
    data = path.read_bytes()
    if export_name(model, data) != path.name:
        return "is damaged (its sha256 is not the one in its name)"
    return _check(model, runtime, data, threads, probe=False)


def _check(model: FERModel, runtime: str, data: bytes, threads: int, probe: bool) -> ExportedNetwork | str:
    """The loaded export, or why it cannot be trusted; `probe`: also compare it with eager."""
    try:
        exported = ExportedNetwork(runtime, data, threads)
    except Exception as err:  # truncated or foreign bytes, a graph the runtime refuses
        return f"does not load in {runtime} ({str(err).strip().splitlines()[0][:200]})"
    if exported.recorded_fingerprint != model.fingerprint:
        return ("is not an export of ours (no weights fingerprint inside)" if not exported.recorded_fingerprint
                else f"was exported from other weights ({exported.recorded_fingerprint[:16]}...)")
    if probe:
        diff = disagreement(model, exported)
        if not diff <= AGREEMENT_TOLERANCE:
            return f"disagrees with the eager model by {diff:.2g} (more than {AGREEMENT_TOLERANCE:g})"
    return exported
