"""POST /predict's body as a value: `text`, `texts`, or the served model's own text column
(one text or a list), and each refusal naming the field."""

import pytest
from pydantic import ValidationError

from modelyard.serving.schemas import PredictRequest


def texts(body: dict[str, object], column: str | None = "review") -> list[str]:
    return PredictRequest.model_validate(body).all_texts(column)


def test_text_texts_and_the_models_own_column():
    assert texts({"text": "a"}) == ["a"]
    assert texts({"texts": ["a", "b"]}) == ["a", "b"]
    assert texts({"review": "a"}) == ["a"]
    assert texts({"review": ["a", "b"]}) == ["a", "b"]
    # No model loaded yet: the column is taken as given (the request then waits for one).
    assert texts({"body": ["a"]}, None) == ["a"]


@pytest.mark.parametrize(
    "body, words",
    [
        ({}, "exactly one of `text`, `texts` or the model's text column"),
        ({"text": "a", "review": "b"}, "got `text`, `review`"),
        ({"review": "a", "title": "b"}, "got `review`, `title`"),
        ({"texts": []}, "`texts` is empty"),
        ({"review": []}, "extra field `review`: expected a text or a non-empty list of texts"),
        ({"review": ["a", 3]}, "extra field `review`"),
        ({"review": 3}, "extra field `review`"),
    ],
)
def test_malformed_bodies_are_refused(body, words):
    with pytest.raises(ValidationError, match=words):
        PredictRequest.model_validate(body)


def test_a_column_the_model_was_not_trained_on_is_named():
    with pytest.raises(
        ValueError,
        match="extra field `body`: this model reads `text`, `texts` "
        "or `review` \\(its data.text_column\\)",
    ):
        texts({"body": "a"})
    with pytest.raises(ValueError, match="extra field `review`: this model reads `text`, `texts`$"):
        texts({"review": "a"}, "text")
