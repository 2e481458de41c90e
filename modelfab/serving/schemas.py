"""The REST answers' shapes, as /openapi.json documents them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class Prediction(BaseModel):
    prediction: Any = Field(description="Predicted class label or value.")
    confidence: float | None = Field(default=None, description="Probability of the predicted class "
                                                               "(classification).")
    probabilities: dict[str, float] | None = Field(default=None, description="Class probabilities (classification).")
    warning: str | None = Field(default=None, description="Present when the record lacked what the model rests on "
                                                          "(e.g. a text model's text was empty).")


class PredictResponse(BaseModel):
    model: str
    version: int
    predictions: list[Prediction]


class PredictFileResponse(BaseModel):
    model: str
    version: int
    predictions: list[dict[str, Any]] = Field(
        description="One row per scored item: one for a recording or an image, one per series of a file of "
                    "series, one per table row. A classifier's row has `prediction` and `probabilities` (an "
                    "object) as /predict's rows do, besides its own fields (`label`, `confidence`, `proba_<class>`, "
                    "a recording's `windows`, ...); an anomaly model's row has `score`, `is_anomaly`, `threshold`.")
    notes: list[str] | None = Field(default=None, description="What reading the file did to its values (numbers "
                                                         "read as missing, a series' gaps filled), when anything.")
    result: dict[str, Any] | None = Field(
        default=None, description="Recordings, images and files of series: the same answer as before "
                                  "`predictions` was added (the row itself; for series {\"predictions\": [...]}). "
                                  "Kept for existing clients; read `predictions`.")


class ErrorBody(BaseModel):
    code: str
    message: str
    hint: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody


PREDICT_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {
            "type": "object", "required": ["records"],
            "properties": {"records": {"type": "array", "minItems": 1,
                                       "items": {"type": "object", "additionalProperties": True}}},
            "example": {"records": [{"temperature": 71.5, "line": "L2"}]},
        }}},
    }
}


# Health probes and the API description (no data, no model details) need no token;
# the docs page has an "Authorize" button for the bearer token.
