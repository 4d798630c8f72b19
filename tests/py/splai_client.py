"""The Python client (`pip install ./clients/python`) against a running `splai up`: submit (typed
and plain), follow the stream with resume, cancel, artifacts and lineage, idempotent retries, and
a 4xx error's body as a typed exception. Prints a JSON summary; any failed check raises."""

import json
import sys

import splai
from splai_api.models import JobSubmission

url = sys.argv[1]
client = splai.Client(url)
out = {}

# A plain explicit DAG of pure tools: template → aggregation.
dag = {"type": "explicit", "dag": {"tasks": [
    {"id": "greet", "kind": "tool_execution",
     "inputs": {"tool": {"literal": "template"}, "template": {"literal": "Hi {{name}}"},
                "name": {"literal": "Ada"}}},
    {"id": "report", "kind": "aggregation", "parents": ["greet"],
     "inputs": {"part-0": {"output": {"task": "greet", "pointer": "/text"}}}},
]}}
accepted = client.submit(dag)
job_id = accepted["job_id"]
events = list(client.stream(job_id))
assert events[0].event == "job.snapshot" and events[-1].event == "end", [e.event for e in events]
ids = [e.id for e in events if e.id is not None]
assert len(ids) == len(set(ids)), ids
done = client.job(job_id)
assert done["state"] == "succeeded", done
out["result"] = done["result"]

# From the first event on (Last-Event-ID 0), whenever the job ended: the fresh stream's events past
# its snapshot are the tail of these. Resumed after the first: exactly the rest.
numbered = [e for e in client.stream(job_id, last_event_id="0") if e.id is not None]
assert len(numbered) >= 2, numbered
fresh = [e.id for e in events if e.id is not None and e.event != "job.snapshot"]
assert [e.id for e in numbered][len(numbered) - len(fresh):] == fresh, (numbered, fresh)
resumed = [e for e in client.stream(job_id, last_event_id=numbered[0].id)]
assert [e.id for e in resumed if e.id is not None] == [e.id for e in numbered[1:]], (resumed, numbered)
out["resumed"] = len(resumed)

# Artifacts and lineage.
artifacts = client.artifacts(job_id)["artifacts"]
assert {a["task_id"] for a in artifacts} == {"greet", "report"}, artifacts
greet = next(a for a in artifacts if a["task_id"] == "greet")
assert client.artifact(job_id, "greet", greet["attempt"])["text"] == "Hi Ada"
lineage = client.lineage(job_id)
report = next(t for t in lineage["tasks"] if t["task_id"] == "report")
assert report["parents"] == ["greet"] and report["inputs"], report

# The generated type, and idempotency: the same key twice is one job.
typed = JobSubmission.from_dict({"type": "chat", "input": {"prompt": "Say hi.", "max_tokens": 4},
                                 "idempotency_key": "py-client-once"})
first = client.submit(typed)
again = client.submit(JobSubmission.from_dict(typed.to_dict()))
assert first["job_id"] == again["job_id"], (first, again)
client.cancel(first["job_id"])

# Cancel a job that would sleep for a minute.
sleeper = client.submit({"type": "explicit", "dag": {"tasks": [
    {"id": "nap", "kind": "tool_execution",
     "inputs": {"tool": {"literal": "sleep"}, "ms": {"literal": 60000}}}]}})
assert client.cancel(sleeper["job_id"])["state"] in ("cancelling", "cancelled")
final = client.wait(sleeper["job_id"])
assert final["state"] == "cancelled", final
out["cancelled"] = final["state"]

# Errors arrive typed, with the server's code and field.
try:
    client.job("no-such-job")
    raise AssertionError("an unknown job was found")
except splai.SplaiError as e:
    assert e.status == 404 and e.code == "not_found", vars(e)
try:
    client.submit({"type": "explicit"})
    raise AssertionError("an explicit job without a dag was accepted")
except splai.SplaiError as e:
    assert e.status == 400 and e.code, vars(e)
    out["error"] = {"status": e.status, "code": e.code, "field": e.field}

print(json.dumps(out))
