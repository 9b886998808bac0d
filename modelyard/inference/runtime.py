"""The runtimes a trained model directory can answer with, and loading the one recorded for it.

`eager` is the PyTorch model the gate judged: the reference, always there. `onnx` is its ONNX
export (fp32, `torch.onnx.export` with dynamo, batch and sequence length dynamic), `onnx-int8`
that export with its weights quantized to int8 (ONNX Runtime's dynamic quantization), both run by
ONNX Runtime on the CPU. On CUDA, `eager-fp16` is the PyTorch model in half precision and `onnx`
runs on ONNX Runtime's CUDA provider where the installed build has one.

The exports live in the model directory's `runtime/` folder, next to the weights, so they travel
with the model into MLflow; `runtime/choice.json` names the variant that passed the parity check
(`modelyard.evaluation.parity`) for each kind of device. A variant is only ever loaded through
`load_runtime`, which falls back to `eager` when the file is absent or cannot be run.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from modelyard.inference.classifier import TextClassifier, pick_device

log = logging.getLogger("modelyard.inference")

EAGER = TextClassifier.runtime  # "eager"
EAGER_HALF, ONNX, ONNX_INT8 = "eager-fp16", "onnx", "onnx-int8"
RUNTIME_DIR = "runtime"
CHOICE_FILE = "choice.json"
ONNX_FILES = {ONNX: "model.onnx", ONNX_INT8: "model-int8.onnx"}
# The device kinds a choice is recorded for: a CPU server, a CUDA server.
CPU, CUDA = "cpu", "cuda"


def variants(device: str) -> list[str]:
    """The runtimes worth checking on a device kind, the reference (`eager`) first. int8 dynamic
    quantization has CPU kernels only; half precision pays off on a GPU only."""
    if device == CUDA:
        return [EAGER, EAGER_HALF, *([ONNX] if _cuda_provider() else [])]
    return [EAGER, ONNX, ONNX_INT8]


def device_kind(device: str) -> str:
    """`cuda` for a CUDA device, `cpu` for anything else (mps runs eager)."""
    return CUDA if device.startswith(CUDA) else CPU


def _cuda_provider() -> bool:
    try:
        import onnxruntime
    except ImportError:
        return False
    return "CUDAExecutionProvider" in onnxruntime.get_available_providers()


def _logits_module(model: Any) -> Any:
    """The classifier head's logits of a padded batch, as a torch module for the exporter."""
    import torch

    class Logits(torch.nn.Module):  # type: ignore[misc]  # torch is typed as Any here
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(
            self,
            input_ids: torch.Tensor,
            attention_mask: torch.Tensor,
            token_type_ids: torch.Tensor | None = None,
        ) -> torch.Tensor:
            out = self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            )
            return out.logits

    return Logits().eval()


def export_onnx(classifier: TextClassifier, path: Path) -> Path:
    """The model as one ONNX file (weights inside), inputs named as the tokenizer names them,
    batch and sequence length dynamic."""
    import torch

    names = [n for n in classifier.tokenizer.model_input_names if n != "position_ids"]
    example = classifier.tokenizer(
        ["an example text", "a second, longer example text to pad"],
        padding=True,
        return_tensors="pt",
    )
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    path.parent.mkdir(parents=True, exist_ok=True)
    model = _logits_module(classifier.model.float().to("cpu").eval())
    _quiet_exporter()
    # Its warnings are about the graph capture's internals (axis names it merged, deprecated
    # pytree types), not about the model.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (),
            str(path),
            kwargs={name: example[name] for name in names},
            input_names=names,
            output_names=["logits"],
            dynamic_shapes={name: {0: batch, 1: sequence} for name in names},
            dynamo=True,
            external_data=False,
            verbose=False,
        )
    classifier.model.to(classifier.device)
    return path


def _quiet_exporter() -> None:
    for name in ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript"):
        logging.getLogger(name).setLevel(logging.ERROR)


def quantize_int8(source: Path, path: Path) -> Path:
    """`source`'s weights (MatMul, Gemm, Attention) as int8, one scale per output channel,
    activations quantized on the fly. Per channel because one scale per tensor let a few large
    weights coarsen every other: on the trained MiniLM default, per tensor changed 3.9% of the
    test split's predictions (3.1% of SST-2 dev's), per channel 1.3% (2.4%), at the same speed
    (2026-11-30, 2 vCPUs: 360 texts/s at batch 32 either way, fp32 165)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # It logs advice to pre-process the model on the root logger, meant for vision models.
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        quantize_dynamic(source, path, weight_type=QuantType.QInt8, per_channel=True)
    finally:
        root.setLevel(level)
    return path


def export_variants(directory: Path) -> dict[str, Path]:
    """Export `directory`'s model to `runtime/` (fp32, then int8 from it); the files by name."""
    folder = directory / RUNTIME_DIR
    fp32 = export_onnx(TextClassifier.load(directory, "cpu"), folder / ONNX_FILES[ONNX])
    return {ONNX: fp32, ONNX_INT8: quantize_int8(fp32, folder / ONNX_FILES[ONNX_INT8])}


def usable_cores() -> int:
    """The cores this process may run on (its affinity, a container's cpuset)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def pass_threads() -> int:
    """The threads one forward pass may use: OMP_NUM_THREADS when it is set (torch reads it, and
    a shadow's scoring process sets it to what it may take), else the cores this process may
    use."""
    given = os.environ.get("OMP_NUM_THREADS", "").strip()
    return int(given) if given.isdigit() and int(given) > 0 else usable_cores()


class OnnxClassifier(TextClassifier):
    """A `TextClassifier` whose predictions come from an ONNX Runtime session. The PyTorch
    model stays loaded for what needs gradients or hidden states (explanations, embeddings)."""

    def __init__(
        self, model: Any, tokenizer: Any, path: Path, runtime: str, device: str = CPU
    ) -> None:
        import onnxruntime

        super().__init__(model, tokenizer, "cpu")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = pass_threads()
        options.log_severity_level = 3
        providers = ["CPUExecutionProvider"]
        if device_kind(device) == CUDA:
            providers.insert(0, "CUDAExecutionProvider")
        self.session = onnxruntime.InferenceSession(str(path), options, providers=providers)
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.runtime = runtime

    def _batch_proba(self, texts: Sequence[str]) -> np.ndarray:
        batch = self.tokenizer(list(texts), padding=True, truncation=True, return_tensors="np")
        feed = {name: batch[name].astype(np.int64) for name in self.inputs}
        logits = self.session.run(None, feed)[0].astype(np.float32)
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return np.asarray(exp / exp.sum(axis=1, keepdims=True), dtype=np.float32)


def build_runtime(directory: Path, runtime: str, device: str | None = None) -> TextClassifier:
    """`directory`'s model as `runtime` on `device`; raises when it cannot be built."""
    device = device or pick_device()
    if runtime == EAGER:
        return TextClassifier.load(directory, device)
    if runtime == EAGER_HALF:
        if device_kind(device) != CUDA:
            raise ValueError(f"{EAGER_HALF} runs on CUDA only, not on {device}")
        classifier = TextClassifier.load(directory, device)
        classifier.model.half()
        classifier.runtime = EAGER_HALF
        return classifier
    if runtime not in ONNX_FILES:
        raise ValueError(f"unknown runtime {runtime!r}: one of {[EAGER, EAGER_HALF, *ONNX_FILES]}")
    path = directory / RUNTIME_DIR / ONNX_FILES[runtime]
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing (the model was not exported)")
    eager = TextClassifier.load(directory, "cpu")
    return OnnxClassifier(eager.model, eager.tokenizer, path, runtime, device)


def recorded_choice(directory: Path, device: str) -> str | None:
    """The runtime the parity check chose for this kind of device; None: never checked."""
    path = directory / RUNTIME_DIR / CHOICE_FILE
    if not path.is_file():
        return None
    choice = json.loads(path.read_text()).get(device_kind(device))
    return None if choice is None else str(choice)


def write_choice(directory: Path, choices: dict[str, str]) -> Path:
    path = directory / RUNTIME_DIR / CHOICE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(choices, indent=2, sort_keys=True))
    return path


def load_runtime(
    directory: Path | str, runtime: str | None = None, device: str | None = None
) -> TextClassifier:
    """The model as `runtime` (default: the one recorded for this device kind, else `eager`);
    `eager` with a warning when that runtime cannot be built here (file absent, ONNX Runtime
    missing or failing): a model always loads."""
    directory, device = Path(directory), device or pick_device()
    wanted = runtime or recorded_choice(directory, device) or EAGER
    if wanted == EAGER:
        return TextClassifier.load(directory, device)
    try:
        return build_runtime(directory, wanted, device)
    except Exception as error:  # noqa: BLE001 - the reference model always answers
        log.warning("runtime %s unavailable (%s): answering with %s", wanted, error, EAGER)
        return TextClassifier.load(directory, device)
