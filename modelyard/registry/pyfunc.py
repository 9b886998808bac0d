"""The MLflow pyfunc flavour of a ModelYard model: texts in, the label (as the original label
string) and one probability column per class out.

The texts may be a list of strings, or a DataFrame whose text is in a `text` column or in the
column the training data named (`data.text_column`, kept in the model's `model_config`). The
signature says one string column: that is what lets MLflow pass a plain list through (a named
column would make it refuse one), and MLflow hands the model only a frame's first column."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import mlflow.pyfunc
import pandas as pd
from mlflow.pyfunc import PythonModelContext

from modelyard import tags as tag
from modelyard.data.dataset import TEXT
from modelyard.inference import TextClassifier, pick_device
from modelyard.inference.runtime import CUDA, device_kind, load_runtime

MODEL_DIR_ARTIFACT = "model_dir"
# The key of the model's `model_config` that holds its training data's text column.
TEXT_COLUMN = "text_column"


def predictions_frame(classifier: TextClassifier, texts: list[str]) -> pd.DataFrame:
    probabilities = classifier.predict_proba(texts)
    labels = classifier.labels
    frame = pd.DataFrame(probabilities, columns=[f"prob_{label}" for label in labels]).astype(float)
    frame.insert(0, "label", [labels[i] for i in probabilities.argmax(axis=1)])
    return frame


class TextClassifierModel(mlflow.pyfunc.PythonModel):  # type: ignore[misc]  # mlflow untyped
    classifier: TextClassifier
    text_column: str = TEXT

    def load_context(self, context: PythonModelContext) -> None:
        config = context.model_config or {}
        # The runtime named in the config (the version's `runtime` tag, passed by the registry
        # adapter), else the one the parity check recorded with the model, else eager torch:
        # a version never exported (or logged before exports existed) loads as it always did.
        self.classifier = load_runtime(
            context.artifacts[MODEL_DIR_ARTIFACT], named_runtime(config, pick_device())
        )
        # Models logged before the column was recorded read `text` only.
        self.text_column = str(config.get(TEXT_COLUMN, TEXT))

    # `pd.DataFrame` is a hint MLflow validates nothing against and infers no signature from
    # (the signature logged with the model, inferred from real inputs and outputs, does that);
    # without a hint MLflow warns on every import of this class, i.e. on every model load.
    def predict(
        self,
        context: PythonModelContext,
        model_input: pd.DataFrame,
        params: dict[str, Any] | None = None,
    ) -> pd.DataFrame:
        return predictions_frame(self.classifier, texts_of(model_input, self.text_column))


def named_runtime(config: Mapping[str, Any], device: str) -> str | None:
    """The runtime a model config names for this device kind (None: not named)."""
    key = tag.RUNTIME_CUDA if device_kind(device) == CUDA else tag.RUNTIME
    return str(config.get(key) or "") or None


def texts_of(model_input: pd.DataFrame | str | Sequence[str], text_column: str = TEXT) -> list[str]:
    """The texts of a pyfunc input: a frame's text column (`text_column` or `text`; a list MLflow
    made into a frame has the column 0), or a text or texts given directly."""
    if isinstance(model_input, pd.DataFrame):
        return model_input[_text_column_of(model_input, text_column)].astype(str).tolist()
    if isinstance(model_input, str):
        return [model_input]
    return [str(text) for text in model_input]


def _text_column_of(frame: pd.DataFrame, text_column: str) -> Hashable:
    columns: list[Hashable] = list(frame.columns)
    for name in (text_column, TEXT):
        if name in columns:
            return name
    if columns == [0]:
        return 0
    # A frame's other columns never reach the model (MLflow passes the first one only): a label
    # column first would otherwise be scored as if it were the text.
    raise ValueError(
        f"the input has no text column: expected {text_column!r} or 'text', or a list of "
        f"texts; got the column(s) {[str(c) for c in columns]} (MLflow passes only a "
        f"frame's first column to the model: select the text, df[[{text_column!r}]])"
    )
