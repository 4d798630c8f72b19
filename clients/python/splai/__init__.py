"""SPLAI's REST API from Python: the generated `splai_api` package plus what generation cannot
express — SSE with resume, idempotent retries and typed errors."""

from ._client import Client, Event, SplaiError

__all__ = ["Client", "Event", "SplaiError"]
