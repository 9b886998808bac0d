"""The bodies the REST app reads and answers: its OpenAPI schemas, by these class names."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, Field, model_validator

from modelyard.serving.input_checks import Text, first_unusable


class PredictRequest(BaseModel):
    """One text (`text`), several (`texts`), or the model's own text column: the column its
    training data named (`data.text_column`, in GET /metadata as `text_column`), holding one
    text or a list of them, so that `{"review": "Loved it."}` works for a model trained on a
    `review` column."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {"texts": ["The sound is superb.", "Broke after a week."]},
                {"text": "It does the job."},
                {"review": ["Loved it.", "Meh."]},
            ],
            # What the validator below enforces, said in the schema for clients and fuzzers.
            "minProperties": 1,
            "maxProperties": 1,
            "additionalProperties": {
                "anyOf": [
                    {"type": "string"},
                    {"type": "array", "items": {"type": "string"}, "minItems": 1},
                ]
            },
        },
    )

    text: Text | None = Field(default=None, description="One text (or use `texts`).")
    texts: list[Text] | None = Field(default=None, description="Several texts, answered in order.")

    @model_validator(mode="after")
    def _one_of(self) -> PredictRequest:
        extra = self.model_extra or {}
        given = [key for key in ("text", "texts") if getattr(self, key) is not None] + list(extra)
        if len(given) != 1:
            raise ValueError(
                "give exactly one of `text`, `texts` or the model's text column (`text_column` "
                f"in GET /metadata); got {', '.join(f'`{key}`' for key in given) or 'none'}"
            )
        if self.texts is not None and not self.texts:
            raise ValueError("`texts` is empty")
        for key, value in extra.items():
            if not _text_or_texts(value):
                raise ValueError(
                    f"extra field `{key}`: expected a text or a non-empty list of texts"
                )
            problem = first_unusable(key, [value] if isinstance(value, str) else value)
            if problem is not None:
                raise ValueError(problem)
        return self

    def all_texts(self, text_column: str | None = None) -> list[str]:
        """The request's texts. A model's own column must be `text_column` (None: the model is
        not known yet, any one is taken); ValueError naming the field otherwise."""
        if self.text is not None:
            return [self.text]
        if self.texts is not None:
            return list(self.texts)
        ((key, value),) = (self.model_extra or {}).items()
        if text_column is not None and key != text_column:
            own = f" or `{text_column}` (its data.text_column)" if text_column != "text" else ""
            raise ValueError(f"extra field `{key}`: this model reads `text`, `texts`{own}")
        return [value] if isinstance(value, str) else list(value)


def _text_or_texts(value: object) -> bool:
    if isinstance(value, str):
        return True
    return isinstance(value, list) and bool(value) and all(isinstance(v, str) for v in value)


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
    label: Text = Field(min_length=1, description="The true label.")


class ExplainRequest(BaseModel):
    """One text, under `text` or the model's own text column (as POST /predict takes it)."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {"text": "The sound is superb."},
                {"text": "It does the job.", "label": "positive"},
                {"review": "Loved it."},
            ],
            "minProperties": 1,
            "additionalProperties": {"type": "string", "minLength": 1},
        },
    )

    text: Text | None = Field(default=None, min_length=1)
    label: Text | None = Field(
        default=None, description="The class to explain (default: the predicted one)."
    )

    @model_validator(mode="after")
    def _one_text(self) -> ExplainRequest:
        extra = self.model_extra or {}
        given = (["text"] if self.text is not None else []) + list(extra)
        if len(given) != 1:
            raise ValueError(
                "give exactly one text, as `text` or the model's text column (`text_column` in "
                f"GET /metadata); got {', '.join(f'`{key}`' for key in given) or 'none'}"
            )
        for key, value in extra.items():
            if not isinstance(value, str) or not value:
                raise ValueError(f"extra field `{key}`: expected one non-empty text")
            problem = first_unusable(key, [value])
            if problem is not None:
                raise ValueError(problem)
        return self

    def the_text(self, text_column: str | None = None) -> str:
        """The text; under another field than `text`, it must be `text_column` (None: any)."""
        if self.text is not None:
            return self.text
        ((key, value),) = (self.model_extra or {}).items()
        if text_column is not None and key != text_column:
            own = f" or `{text_column}` (its data.text_column)" if text_column != "text" else ""
            raise ValueError(f"extra field `{key}`: this model reads `text`{own}")
        return str(value)


class TokenAttribution(BaseModel):
    token: str
    start: int
    end: int
    attribution: float = Field(
        description="Share of the class's log-odds, log(p / (1 - p)), this word carries "
        "(integrated gradients): +1 multiplies the odds of the class by e; negative: against it."
    )
    kind: str = Field(
        description='"word", "stop word" or "punctuation" (the latter two are left out of the '
        "report's drivers)."
    )


class ExplainResponse(BaseModel):
    model: str
    model_version: str
    label: str = Field(description="The class explained.")
    predicted: str
    probability: float = Field(description="The probability of `label`.")
    predicted_probability: float = Field(description="The probability of `predicted`.")
    quantity: str = Field(description='What the attributions are of: "log-odds" of `label`.')
    score: float = Field(description="f(text): the log-odds of `label` for the text.")
    baseline_score: float = Field(
        description="f(baseline): the same for the text with every word replaced by [PAD]; "
        "the attributions add up to score - baseline_score, up to `delta`."
    )
    delta: float = Field(description="Completeness error of the integral, in log-odds.")
    truncated: bool = Field(description="The text was longer than the model reads.")
    tokens: list[TokenAttribution]
    html: str = Field(
        description="A self-contained HTML rendering (inline styles), with its colour legend."
    )


class RolloutStatus(BaseModel):
    """The open rollout of the model, as this server follows it."""

    id: int
    strategy: str = Field(description='"shadow" or "canary".')
    champion: str | None = Field(description="The version production served when it opened.")
    challenger: str = Field(description="The version on trial.")
    weight: float = Field(
        description="Share of requests the challenger answers (a canary; 0 in a shadow), by a "
        "hash of the `X-Rollout-Key` header (else of the prediction id)."
    )
    started_at: str
    challenger_loaded: bool = Field(
        description="False while it loads, or when it could not be loaded (`challenger_error`); "
        "production answers everything meanwhile."
    )
    challenger_error: str | None


class Tampered(BaseModel):
    registry: str | None = Field(description="The version the registry's alias names.")
    recorded: str | None = Field(description="The version the audit trail's last move names.")
    message: str


class Metadata(BaseModel):
    model: str
    version: str
    alias: str
    dataset_md5: str | None
    labels: list[str]
    text_column: str = Field(
        description="The column the model's training data kept its texts in; POST /predict "
        "takes it as well as `text` and `texts`."
    )
    loaded_at: str
    runtime: str = Field(
        description='What answers: "eager" (PyTorch; "eager-fp16" on a GPU), "onnx" or '
        '"onnx-int8" (ONNX Runtime): what the parity check of the version chose for this device.'
    )
    rollout: RolloutStatus | None = Field(
        default=None,
        description="The open shadow or canary rollout this server follows (only a server "
        "following `production` does), or null.",
    )
    tampered: Tampered | None = Field(
        default=None,
        description="A move of the alias made outside ModelYard (the MLflow UI or API) that "
        "this server does not follow: it serves the version the audit trail records. Null "
        "when the alias is where the trail says.",
    )
