"""The MLflow pyfunc flavour of a ModelYard model: a DataFrame with a `text` column in, the label
(as the original label string) and one probability column per class out."""

from __future__ import annotations

import warnings
from typing import Any

import mlflow.pyfunc
import pandas as pd

from modelyard.training.model import TextClassifier

MODEL_DIR_ARTIFACT = "model_dir"


def predictions_frame(classifier: TextClassifier, texts: list[str]) -> pd.DataFrame:
    probabilities = classifier.predict_proba(texts)
    labels = classifier.labels
    frame = pd.DataFrame(probabilities, columns=[f"prob_{label}" for label in labels]).astype(float)
    frame.insert(0, "label", [labels[i] for i in probabilities.argmax(axis=1)])
    return frame


# MLflow checks `predict` for type hints when the subclass is created and warns that it cannot
# validate inputs without them; the signature logged with the model does that validation instead.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)

    class TextClassifierModel(mlflow.pyfunc.PythonModel):
        def load_context(self, context: Any) -> None:
            self.classifier = TextClassifier.load(context.artifacts[MODEL_DIR_ARTIFACT])

        # No type hints on `model_input`: MLflow would derive the signature from them; ours is
        # inferred from real inputs and outputs instead.
        def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
            if isinstance(model_input, pd.DataFrame):
                texts = model_input["text"].astype(str).tolist()
            elif isinstance(model_input, str):
                texts = [model_input]
            else:
                texts = [str(text) for text in model_input]
            return predictions_frame(self.classifier, texts)
