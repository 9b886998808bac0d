"""Feedback merged into training data: one row per normalised text, the feedback's label
winning, new texts appended, the dataset's own column names back."""

import pandas as pd

from modelyard.adapters.feedback import merge, to_source_columns
from modelyard.config import DataParams


def test_feedback_wins_and_duplicates_collapse():
    training = pd.DataFrame(
        {"text": ["Great sound", "bad battery", "ok"], "label": ["positive", "negative", "neutral"]}
    )
    feedback = pd.DataFrame(
        {
            "text": ["great  SOUND", "new text", "new text"],
            "label": ["neutral", "negative", "positive"],
        }
    )
    merged = merge(training, feedback)
    assert merged.to_dict("records") == [
        {"text": "bad battery", "label": "negative"},
        {"text": "ok", "label": "neutral"},
        {"text": "great  SOUND", "label": "neutral"},  # a person corrected it
        {"text": "new text", "label": "positive"},  # the latest feedback of a repeated text
    ]
    renamed = to_source_columns(merged, DataParams(text_column="review", label_column="stars"))
    assert list(renamed.columns) == ["review", "stars"]
