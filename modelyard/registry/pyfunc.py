"""The MLflow pyfunc flavour of a ModelYard model: a DataFrame with a `text` column in, the label
(as the original label string) and one probability column per class out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import mlflow.pyfunc
import pandas as pd
from mlflow.pyfunc import PythonModelContext

from modelyard.inference import TextClassifier

MODEL_DIR_ARTIFACT = "model_dir"


def predictions_frame(classifier: TextClassifier, texts: list[str]) -> pd.DataFrame:
    probabilities = classifier.predict_proba(texts)
    labels = classifier.labels
    frame = pd.DataFrame(probabilities, columns=[f"prob_{label}" for label in labels]).astype(float)
    frame.insert(0, "label", [labels[i] for i in probabilities.argmax(axis=1)])
    return frame


class TextClassifierModel(mlflow.pyfunc.PythonModel):  # type: ignore[misc]  # mlflow untyped
    def load_context(self, context: PythonModelContext) -> None:
        self.classifier = TextClassifier.load(context.artifacts[MODEL_DIR_ARTIFACT])

    # `pd.DataFrame` is a hint MLflow validates nothing against and infers no signature from
    # (the signature logged with the model, inferred from real inputs and outputs, does that);
    # without a hint MLflow warns on every import of this class, i.e. on every model load.
    def predict(
        self,
        context: PythonModelContext,
        model_input: pd.DataFrame,
        params: dict[str, Any] | None = None,
    ) -> pd.DataFrame:
        return predictions_frame(self.classifier, texts_of(model_input))


def texts_of(model_input: pd.DataFrame | str | Sequence[str]) -> list[str]:
    """The texts of a pyfunc input: the `text` column of a frame (what MLflow passes, the
    signature enforced), or a text or texts given directly."""
    if isinstance(model_input, pd.DataFrame):
        return model_input["text"].astype(str).tolist()
    if isinstance(model_input, str):
        return [model_input]
    return [str(text) for text in model_input]
