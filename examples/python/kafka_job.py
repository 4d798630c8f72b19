"""Produce a job straight to SPLAI's `jobs` topic and follow it on `job-events`, with the record
types generated from the contract (`splai_types.py`, from contract/v1/envelope.schema.json by
`scripts/clients`): the producer builds a typed `JobRequestRecord`, the consumer parses every
record into the generated `Envelope` union.

    python examples/python/kafka_job.py --brokers 127.0.0.1:9092 [--prefix splai.] \
        [--tenant acme --token T] [--job-id my-job]

Prints the job's terminal state (exit 0 when it succeeded)."""

import argparse
import sys
import time
import uuid

from confluent_kafka import Consumer, Producer

from splai_types import (
    Envelope,
    JobRejectedRecord,
    JobRequest,
    JobRequestRecord,
    JobStateChangedRecord,
)

TERMINAL = {"succeeded", "failed", "cancelled", "rejected"}


def main() -> int:
    args = argparse.ArgumentParser()
    args.add_argument("--brokers", required=True)
    args.add_argument("--prefix", default="", help="the deployment's log.topic_prefix, e.g. `splai.`")
    args.add_argument("--tenant", default="default")
    args.add_argument("--token", help="an API token, when auth is on (sent as the `authorization` header)")
    args.add_argument("--job-id", default=f"py-{uuid.uuid4().hex[:12]}")
    args.add_argument("--timeout-s", type=float, default=90)
    a = args.parse_args()

    # An explicit one-task job: the `regex` tool counts the words of a text.
    body = JobRequest.model_validate({
        "type": "explicit",
        "job_id": a.job_id,
        "dag": {"tasks": [{"id": "count", "kind": "tool_execution", "inputs": {
            "tool": {"literal": "regex"}, "pattern": {"literal": "\\w+"},
            "text": {"literal": "typed by generated pydantic models"}}}]},
    })
    record = JobRequestRecord(v=1, id=a.job_id, ts_ms=int(time.time() * 1000), tenant=a.tenant,
                              kind="job_request", body=body)
    headers = [("authorization", f"Bearer {a.token}".encode())] if a.token else None
    producer = Producer({"bootstrap.servers": a.brokers})
    producer.produce(f"{a.prefix}jobs", key=a.job_id,
                     value=record.model_dump_json(exclude_none=True, exclude_defaults=True, by_alias=True), headers=headers)
    if producer.flush(10) != 0:
        print("the record was not delivered", file=sys.stderr)
        return 2

    consumer = Consumer({"bootstrap.servers": a.brokers, "group.id": f"py-follow-{a.job_id}",
                         "auto.offset.reset": "earliest", "session.timeout.ms": 6000})
    consumer.subscribe([f"{a.prefix}job-events"])
    deadline = time.time() + a.timeout_s
    try:
        while time.time() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            event = Envelope.model_validate_json(message.value()).root
            if getattr(event.body, "job_id", None) != a.job_id:
                continue
            if isinstance(event, JobStateChangedRecord):
                state = event.body.state.root
                state = getattr(state, "value", state)  # an enum member, or the literal `rejected`
                if state in TERMINAL:
                    print(state)
                    return 0 if state == "succeeded" else 1
            if isinstance(event, JobRejectedRecord):
                print(f"rejected {event.body.code}: {event.body.reason}")
                return 1
    finally:
        consumer.close()
    print("timed out", file=sys.stderr)
    return 3


if __name__ == "__main__":
    sys.exit(main())
