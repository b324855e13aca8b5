"""Reading a Server-Sent Events response in tests."""

from __future__ import annotations

import json
import time
from typing import Any

from fastapi.testclient import TestClient


def read_events(
    client: TestClient, payload: dict[str, Any], headers: dict[str, str] | None = None
) -> list[tuple[str, Any, float]]:
    """(event, data, seconds since the request) for each SSE event of the response."""
    events: list[tuple[str, Any, float]] = []
    started = time.perf_counter()
    with client.stream("POST", "/v1/ask/stream", json=payload, headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        name, data = None, []
        for line in response.iter_lines():
            if line.startswith("event:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                data.append(line.split(":", 1)[1].strip())
            elif not line and name:
                events.append((name, json.loads("\n".join(data)), time.perf_counter() - started))
                name, data = None, []
    return events
