"""Drive SPLAI's OpenAI-compatible API with the official `openai` package (an ordinary client).

Usage: openai_client.py BASE_URL. Prints one JSON object with what it saw; exits non-zero on a
failed expectation.
"""
import json
import sys

import openai

base = sys.argv[1]
client = openai.OpenAI(base_url=base + "/v1", api_key="unused-when-auth-is-off", max_retries=0, timeout=300)
out = {}

models = [m.id for m in client.models.list().data]
out["models"] = models
assert "smollm2-135m-instruct" in models and "all-minilm-l6-v2" in models, models

question = [{"role": "user", "content": "What is the capital of France? Answer in one short sentence."}]
chat = client.chat.completions.create(
    model="smollm2-135m-instruct", messages=question, max_tokens=32, temperature=0, seed=7
)
text = chat.choices[0].message.content
out["chat"] = text
out["usage"] = chat.usage.model_dump()
assert "Paris" in text, text
assert chat.usage.prompt_tokens > 0 and chat.usage.completion_tokens > 0, chat.usage
assert chat.usage.total_tokens == chat.usage.prompt_tokens + chat.usage.completion_tokens

chunks = list(
    client.chat.completions.create(
        model="smollm2-135m-instruct", messages=question, max_tokens=32, temperature=0, seed=7, stream=True
    )
)
deltas = [c.choices[0].delta.content or "" for c in chunks if c.choices]
out["chunks"] = len(chunks)
out["streamed"] = "".join(deltas)
assert len([d for d in deltas if d]) >= 3, deltas
assert "".join(deltas) == text, ("".join(deltas), text)
assert chunks[-1].choices[0].finish_reason in ("stop", "length"), chunks[-1]

completion = client.completions.create(model="smollm2-135m-instruct", prompt="Name one primary colour.", max_tokens=16, temperature=0)
out["completion"] = completion.choices[0].text
assert completion.choices[0].text.strip(), completion

emb = client.embeddings.create(model="all-minilm-l6-v2", input=["a cat sits on the mat", "a kitten on a rug", "stock prices fell"])
vectors = [d.embedding for d in emb.data]
out["dims"] = [len(v) for v in vectors]
assert [len(v) for v in vectors] == [384, 384, 384], out["dims"]
dot = lambda a, b: sum(x * y for x, y in zip(a, b))
assert dot(vectors[0], vectors[1]) > dot(vectors[0], vectors[2]), "similar sentences are closer"

try:
    client.chat.completions.create(model="smollm2-135m-instruct", messages=[])
    raise AssertionError("an empty messages list was accepted")
except openai.BadRequestError as e:
    out["error"] = e.body
    assert e.status_code == 400 and e.body.get("type") == "invalid_request_error", e.body

# A model no live worker serves is answered at once with OpenAI's 404, not left to hang.
try:
    client.with_options(timeout=10).chat.completions.create(model="gpt-9", messages=question)
    raise AssertionError("a model no worker serves was accepted")
except openai.NotFoundError as e:
    out["unknown_model"] = e.body
    assert e.body.get("code") == "model_not_found" and e.body.get("param") == "model", e.body

# A served model of the wrong kind (chat with the embedding model, embeddings with the language
# model) is answered at once too, instead of queueing until the task is unschedulable.
try:
    client.with_options(timeout=10).chat.completions.create(model="all-minilm-l6-v2", messages=question)
    raise AssertionError("chat with an embedding model was accepted")
except openai.NotFoundError as e:
    assert e.body.get("code") == "model_not_found" and "cannot serve" in e.body.get("message", ""), e.body
try:
    client.with_options(timeout=10).embeddings.create(model="smollm2-135m-instruct", input="a cat")
    raise AssertionError("embeddings with a language model were accepted")
except openai.NotFoundError as e:
    assert e.body.get("code") == "model_not_found" and e.body.get("param") == "model", e.body

# Structured outputs: the SDK's parse() with a pydantic model (json_schema, strict), and json_object.
from typing import Literal

import pydantic


class Ticket(pydantic.BaseModel):
    id: int
    component: Literal["login", "billing", "search", "mobile"]
    problem: str
    affected_users: int


ticket = [{"role": "user", "content": "Extract the ticket as JSON: #4471 [billing] The invoice PDF is blank. "
           "Seen by 12 users since Monday."}]
parsed = client.chat.completions.parse(
    model="smollm2-135m-instruct", messages=ticket, response_format=Ticket, max_tokens=96, temperature=0
)
got = parsed.choices[0].message.parsed
out["structured"] = got.model_dump()
assert isinstance(got, Ticket) and got.component == "billing" and got.id == 4471, got

loose = client.chat.completions.create(
    model="smollm2-135m-instruct", messages=ticket, response_format={"type": "json_object"}, max_tokens=48,
    temperature=0,
)
obj = json.loads(loose.choices[0].message.content)
out["json_object"] = obj
assert isinstance(obj, dict), obj

try:
    client.chat.completions.create(
        model="smollm2-135m-instruct", messages=ticket,
        response_format={"type": "json_schema", "json_schema": {"name": "t", "schema": {"anyOf": []}}},
    )
    raise AssertionError("an unsupported schema was accepted")
except openai.BadRequestError as e:
    out["schema_error"] = e.body
    assert e.status_code == 400 and "anyOf" in json.dumps(e.body), e.body

print(json.dumps(out))
