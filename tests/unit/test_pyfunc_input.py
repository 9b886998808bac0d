"""What the pyfunc model reads its texts from: a list, one text, or a frame's `text` column or the
training data's own text column; a frame with neither is refused, naming both."""

import pandas as pd
import pytest

from modelyard.registry.pyfunc import texts_of


@pytest.mark.parametrize(
    "given",
    [
        ["a", "b"],
        pd.DataFrame({"text": ["a", "b"]}),
        pd.DataFrame({"review": ["a", "b"], "sentiment": ["x", "y"]}),
        pd.DataFrame(["a", "b"]),  # a list, as MLflow hands it to the model
    ],
)
def test_texts_from_a_list_or_a_frame(given):
    assert texts_of(given, "review") == ["a", "b"]


def test_one_text_and_the_default_column():
    assert texts_of("a") == ["a"]
    assert texts_of(pd.DataFrame({"text": [1, "b"]})) == ["1", "b"]


def test_a_frame_without_the_text_is_refused():
    # MLflow passes only a frame's first column: the label column, when it comes first.
    with pytest.raises(
        ValueError,
        match=r"expected 'review' or 'text'.*\['sentiment'\].*"
        r"df\[\['review'\]\]",
    ):
        texts_of(pd.DataFrame({"sentiment": ["x"]}), "review")
