"""The bodies the REST app reads and answers: its OpenAPI schemas, by these class names."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, Field, model_validator


class PredictRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"texts": ["The sound is superb.", "Broke after a week."]},
                {"text": "It does the job."},
            ]
        },
    )

    text: str | None = Field(default=None, description="One text (or use `texts`).")
    texts: list[str] | None = Field(default=None, description="Several texts, answered in order.")

    @model_validator(mode="after")
    def _one_of(self) -> PredictRequest:
        if (self.text is None) == (self.texts is None):
            raise ValueError("give exactly one of `text` or `texts`")
        if self.texts is not None and not self.texts:
            raise ValueError("`texts` is empty")
        return self

    def all_texts(self) -> list[str]:
        return [self.text] if self.text is not None else list(self.texts or [])


class Prediction(BaseModel):
    id: str = Field(description="Quote it in POST /feedback.")
    label: str
    probabilities: dict[str, float]
    model_version: str


class PredictResponse(BaseModel):
    model: str
    model_version: str
    predictions: list[Prediction]


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prediction_id: uuid.UUID
    label: str = Field(min_length=1, description="The true label.")


class ExplainRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"text": "The sound is superb."},
                {"text": "It does the job.", "label": "positive"},
            ]
        },
    )

    text: str = Field(min_length=1)
    label: str | None = Field(
        default=None, description="The class to explain (default: the predicted one)."
    )


class TokenAttribution(BaseModel):
    token: str
    start: int
    end: int
    attribution: float = Field(
        description="Share of the class probability this word carries "
        "(integrated gradients); negative: against it."
    )


class ExplainResponse(BaseModel):
    model: str
    model_version: str
    label: str
    predicted: str
    probability: float
    delta: float = Field(description="Completeness error of the integral.")
    truncated: bool = Field(description="The text was longer than the model reads.")
    tokens: list[TokenAttribution]
    html: str = Field(description="A self-contained HTML rendering.")


class Metadata(BaseModel):
    model: str
    version: str
    alias: str
    dataset_md5: str | None
    labels: list[str]
    loaded_at: str
