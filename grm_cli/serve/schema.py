"""Pydantic models of `grm serve`'s bodies, for the OpenAPI schema at /docs and /openapi.json.

They document; they do not validate. The routes read bodies with `body.read_json` (size and depth
limits) and check them with `contracts` (the validator `grm score` uses on files), so a bad record gets the
same located message over HTTP as from a file. `openapi_body` turns a model into the `openapi_extra` a
route declares, with its definitions placed where OpenAPI looks for them.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter


class Message(BaseModel):
    role: str = Field(description='"system", "user" or "assistant"')
    content: str


class RecordIn(BaseModel):
    """One record as in the JSONL files: `prompt` + `responses`, TRL's `chosen`/`rejected` or
    `completion` + `label`, or `messages`."""

    model_config = ConfigDict(extra="allow")
    id: Optional[str] = Field(None, description="Kept in the result; default: a hash of the content (it also seeds the samples).")
    prompt: Optional[Union[str, List[Message]]] = None
    messages: Optional[List[Message]] = Field(None, description="A conversation; the last user turn is the query.")
    responses: Optional[List[str]] = Field(None, description="1 to 16 candidate responses, judged together.")
    chosen: Optional[Union[str, List[Message]]] = None
    rejected: Optional[Union[str, List[Message]]] = None
    completion: Optional[Union[str, List[Message]]] = None
    preferred: Optional[int] = Field(None, description="0-based index of the labelled best response.")
    label: Optional[Union[bool, int]] = Field(None, description="For one response with --template single: 1/true = correct.")
    subset: Optional[str] = None
    principles: Optional[str] = Field(None, description="Fixed principles for this record.")


class RecordsIn(BaseModel):
    records: List[RecordIn] = Field(description="At most 256 records.")


ScoreIn = Union[RecordIn, List[RecordIn], RecordsIn]


class ScoreOut(BaseModel):
    results: List[Dict[str, Any]] = Field(description="One result per record, in order: the objects `grm score --output` writes.")


class GetRewardIn(BaseModel):
    """OpenRLHF's remote reward model request."""

    query: List[str] = Field(description="Prompt + response texts, as OpenRLHF sends them.")
    prompts: List[str] = Field(description="The prompt of each query: each query must start with it.")
    labels: Optional[List[Any]] = Field(None, description="OpenRLHF's labels; the GRM judges without them.")


class GetRewardOut(BaseModel):
    rewards: List[Optional[float]] = Field(description="Mean score of each completion over its parsed samples (--unparsed-reward, else null, where none parsed).")
    scores: List[Optional[float]] = Field(description="The rewards scaled to 0..1 over the template's score range (OpenRLHF's dynamic filtering).")
    extra_logs: Dict[str, List[float]] = Field(description="Per completion: grm_parsed (1/0) and grm_votes (parsed samples).")
    unparsed: List[int] = Field(description="Indices of completions no sample could score.")


class RewardsIn(BaseModel):
    """The TRL and verl hooks' request: completions of prompts, each a string or chat messages."""

    prompts: List[Union[str, List[Message]]]
    completions: List[Union[str, List[Message]]]


class RewardsOut(BaseModel):
    rewards: List[Optional[float]] = Field(description="Mean score per completion; null where no sample parsed; the lowest score for an empty completion.")
    unparsed: List[int]
    score_range: List[int] = Field(description="The template's lowest and highest score.")


class Health(BaseModel):
    status: str
    model: str
    template: str
    k: int
    queue: int
    served: int
    auth: bool = Field(description="Whether the scoring routes need `Authorization: Bearer KEY`.")


class ErrorOut(BaseModel):
    error: str


def openapi_body(annotation, components: dict) -> dict:
    """`openapi_extra` declaring `annotation` as the JSON request body; its definitions go to `components`."""
    schema = TypeAdapter(annotation).json_schema(ref_template="#/components/schemas/{model}")
    components.update(schema.pop("$defs", {}))
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):  # a named model: referenced, as FastAPI does
        components[annotation.__name__] = schema
        schema = {"$ref": f"#/components/schemas/{annotation.__name__}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


ERRORS = {code: {"model": ErrorOut, "description": text} for code, text in (
    (400, "Bad JSON or a bad record: the message names the record and the field."),
    (401, "Missing or wrong `Authorization: Bearer KEY` (the server runs with --api-key)."),
    (413, "The body is over --max-body-mb."),
    (503, "The queue is full, or the server is shutting down: retry after Retry-After seconds."),
    (504, "The request waited past --request-timeout; its records were not scored."),
)}
