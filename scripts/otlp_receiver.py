#!/usr/bin/env python3
"""A minimal OTLP/HTTP receiver for tests: every export request to /v1/traces, /v1/metrics or
/v1/logs (protobuf or JSON) is appended to a file as one JSON line, with trace and span ids in
hex as OTLP/JSON specifies. Tests read the file to assert that spans really arrived.

usage: otlp_receiver.py --port 4318 --out FILE
"""
import argparse
import base64
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

KINDS = {
    "/v1/traces": ExportTraceServiceRequest,
    "/v1/metrics": ExportMetricsServiceRequest,
    "/v1/logs": ExportLogsServiceRequest,
}
ID_FIELDS = {"traceId", "spanId", "parentSpanId"}
LOCK = threading.Lock()


def hex_ids(node):
    """protobuf's JSON mapping renders bytes as base64; OTLP/JSON wants hex ids."""
    if isinstance(node, dict):
        return {
            k: (base64.b64decode(v).hex() if k in ID_FIELDS and isinstance(v, str) else hex_ids(v))
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [hex_ids(v) for v in node]
    return node


class Handler(BaseHTTPRequestHandler):
    out = None

    def do_POST(self):
        kind = KINDS.get(self.path)
        if kind is None:
            self.send_error(404, "unknown OTLP path")
            return
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        content_type = self.headers.get("Content-Type", "")
        try:
            if "json" in content_type:
                doc = json.loads(body)
            else:
                message = kind()
                message.ParseFromString(body)
                doc = hex_ids(MessageToDict(message))
        except Exception as error:  # a bad export is reported, not fatal
            self.send_error(400, f"cannot decode: {error}")
            return
        line = json.dumps({"path": self.path, "request": doc}, sort_keys=True)
        with LOCK, open(self.out, "a", encoding="utf-8") as f:
            f.write(line + "\n")
        reply = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def do_GET(self):  # readiness probe
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=4318)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    Handler.out = args.out
    open(args.out, "a").close()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"otlp receiver on 127.0.0.1:{args.port} writing {args.out}", file=sys.stderr, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
