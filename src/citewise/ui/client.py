"""The UI's only way to Citewise: HTTP calls to its API, with errors a person can read.

Every call returns the API's JSON (plain dicts and lists: the UI imports nothing
else from Citewise) or raises `ApiError`, whose message is a sentence for the
person in front of the screen, not a status code.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from email.message import Message
from email.utils import collapse_rfc2231_value
from typing import Any, BinaryIO

import httpx
from httpx_sse import SSEError, connect_sse

Json = dict[str, Any]

# What a status code means to the person using the UI (when the API sent no better message).
STATUS_SENTENCES = {
    400: "Citewise could not use that request.",
    401: "Your API key was not accepted. Check it, or ask your administrator for a new one.",
    403: "Your key does not allow this. Sign in with an administrator key to manage documents.",
    404: "That item does not exist, or you are not allowed to see it.",
    409: "That conflicts with work already in progress; try again in a moment.",
    413: "That is too large for Citewise to accept.",
    415: "Citewise cannot read files of that type.",
    422: "Some of what you entered is not valid.",
    429: "You are sending requests faster than your limit allows.",
    500: "Citewise ran into an internal problem; your administrator can find it in the logs.",
    503: "Citewise is briefly unavailable (starting, or a service it needs is down); "
    "try again in a minute.",
    507: "Citewise has no storage space left for uploads; ask your administrator.",
}


class ApiError(Exception):
    """A call failed; `str(error)` is a sentence for the user, `code` the API's error code."""

    def __init__(self, message: str, *, status: int = 0, code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def _sentence(text: str) -> str:
    text = text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def error_from(response: httpx.Response) -> ApiError:
    """The `ApiError` of an unsuccessful response (the API's one error shape, else the status)."""
    status = response.status_code
    code, detail = "", ""
    try:
        error = response.json().get("error", {})
        code = str(error.get("code", ""))
        detail = str(error.get("message", ""))
        fields = error.get("details") or []
        if fields:  # 422: each invalid field, named by the last part of its location
            detail = "; ".join(
                f"{str((f.get('loc') or ['value'])[-1]).replace('_', ' ')}: {f.get('msg', '')}"
                for f in fields
            )
    except (ValueError, AttributeError):
        pass
    general = STATUS_SENTENCES.get(status, f"Citewise answered with an error ({status}).")
    if status == 429:
        retry = response.headers.get("Retry-After")
        if retry:
            general += f" Try again in {retry} seconds."
        return ApiError(general, status=status, code=code)
    if status in (401, 403, 500) or not detail:
        return ApiError(general, status=status, code=code)
    return ApiError(f"{general} {_sentence(detail)}", status=status, code=code)


def _filename(response: httpx.Response, fallback: str) -> str:
    """The exact file name of a download: RFC 6266 ``filename*``, else ``filename``."""
    message = Message()
    message["content-disposition"] = response.headers.get("content-disposition", "")
    params = dict(message.get_params(header="content-disposition", failobj=[]))
    name = params.get("filename*") or params.get("filename")  # filename* is (charset, lang, text)
    return collapse_rfc2231_value(name) if name else fallback


@dataclass(frozen=True)
class StreamEvent:
    """One event of a streamed answer: ``meta``, ``token``, ``fallback``, ``final`` or ``error``."""

    name: str
    data: Json


class CitewiseClient:
    """A signed-in connection to the Citewise API.

    Args:
        base_url: The API's address, e.g. ``http://127.0.0.1:8000``.
        api_key: An API key (``cw_...``) or an OIDC access token.
        timeout_s: Longest wait for one response (answers on CPU can take minutes).
    """

    def __init__(self, base_url: str, api_key: str, *, timeout_s: float = 300.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {api_key.strip()}"},
            timeout=httpx.Timeout(timeout_s, connect=5.0),
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> CitewiseClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # --- plumbing ------------------------------------------------------------------------

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise ApiError(
                "Citewise took too long to answer. Try again, or ask a shorter question."
            ) from exc
        except httpx.HTTPError as exc:
            raise ApiError(
                f"Citewise cannot be reached at {self.base_url}. Check that the API is running."
            ) from exc
        if response.status_code >= 400:
            raise error_from(response)
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._call(method, path, **kwargs)
        return response.json() if response.content else None

    # --- everyone ------------------------------------------------------------------------

    def me(self) -> Json:
        """Who the credentials belong to: tenant, role, user, groups, credential."""
        result: Json = self._json("GET", "/v1/me")
        return result

    def ask(self, question: str, *, conversation_id: str | None = None) -> Json:
        """Ask and wait for the verified answer."""
        body: Json = {"question": question}
        if conversation_id:
            body["conversation_id"] = conversation_id
        result: Json = self._json("POST", "/v1/ask", json=body)
        return result

    def ask_stream(
        self, question: str, *, conversation_id: str | None = None
    ) -> Iterator[StreamEvent]:
        """Ask and yield the answer's events as they come; the last is ``final`` or ``error``."""
        body: Json = {"question": question}
        if conversation_id:
            body["conversation_id"] = conversation_id
        try:
            with connect_sse(self._http, "POST", "/v1/ask/stream", json=body) as source:
                if source.response.status_code >= 400:
                    source.response.read()
                    raise error_from(source.response)
                for sse in source.iter_sse():
                    yield StreamEvent(sse.event, sse.json())
        except SSEError as exc:
            raise ApiError("Citewise sent an answer this page could not read.") from exc
        except httpx.TimeoutException as exc:
            raise ApiError("Citewise took too long to answer. Try again.") from exc
        except httpx.HTTPError as exc:
            raise ApiError(
                f"Citewise cannot be reached at {self.base_url}. Check that the API is running."
            ) from exc

    def conversations(self, limit: int = 30) -> list[Json]:
        """The caller's conversations, most recently active first."""
        page: Json = self._json("GET", "/v1/conversations", params={"limit": limit})
        items: list[Json] = page["items"]
        return items

    def new_conversation(self) -> Json:
        """Start an (untitled) conversation."""
        result: Json = self._json("POST", "/v1/conversations", json={})
        return result

    def conversation(self, conversation_id: str) -> Json:
        """A conversation with its messages, oldest first."""
        result: Json = self._json("GET", f"/v1/conversations/{conversation_id}")
        return result

    def delete_conversation(self, conversation_id: str) -> None:
        """Delete one of the caller's conversations."""
        self._call("DELETE", f"/v1/conversations/{conversation_id}")

    def feedback(self, answer_id: str, rating: str, comment: str = "") -> Json:
        """Rate an answer ``up`` or ``down``, with an optional comment."""
        body = {"answer_id": answer_id, "rating": rating, "comment": comment}
        result: Json = self._json("POST", "/v1/feedback", json=body)
        return result

    def source(self, doc_id: str, version: int | None = None) -> tuple[bytes, str, str]:
        """The original file of a document: (bytes, filename, media type)."""
        params = {"version": version} if version else {}
        response = self._call("GET", f"/v1/documents/{doc_id}/source", params=params)
        media = response.headers.get("content-type", "application/octet-stream")
        return response.content, _filename(response, doc_id), media.split(";")[0]

    # --- administrators ------------------------------------------------------------------

    def documents(self, tenant: str, *, status: str | None = None, limit: int = 200) -> Json:
        """A page of the tenant's documents (``items``, ``total``)."""
        params: Json = {"limit": limit}
        if status:
            params["status"] = status
        result: Json = self._json("GET", f"/v1/tenants/{tenant}/documents", params=params)
        return result

    def upload(
        self,
        tenant: str,
        files: Sequence[tuple[str, BinaryIO | bytes]],
        *,
        acl_groups: Sequence[str] = (),
    ) -> Json:
        """Upload files as one ingestion job; returns the job (``id``, ``status``, ...)."""
        data = {"acl_groups": ",".join(acl_groups)} if acl_groups else {}
        parts = [("files", (name, content)) for name, content in files]
        result: Json = self._json("POST", f"/v1/tenants/{tenant}/documents", files=parts, data=data)
        return result

    def job(self, job_id: str) -> Json:
        """An ingestion job with its per-file status."""
        result: Json = self._json("GET", f"/v1/jobs/{job_id}")
        return result

    def jobs(self, tenant: str, limit: int = 20) -> list[Json]:
        """The tenant's latest ingestion jobs."""
        page: Json = self._json("GET", f"/v1/tenants/{tenant}/jobs", params={"limit": limit})
        items: list[Json] = page["items"]
        return items

    def delete_document(self, tenant: str, doc_id: str) -> Json:
        """Delete a document and its passages."""
        result: Json = self._json("DELETE", f"/v1/tenants/{tenant}/documents/{doc_id}")
        return result

    def reingest(self, tenant: str, doc_id: str) -> Json:
        """Parse and index a document again from its stored file; returns the job."""
        result: Json = self._json("POST", f"/v1/tenants/{tenant}/documents/{doc_id}/reingest")
        return result

    def feedback_list(
        self, tenant: str, *, rating: str | None = None, limit: int = 50
    ) -> list[Json]:
        """The tenant's feedback with the answers rated, most recent first."""
        params: Json = {"limit": limit}
        if rating:
            params["rating"] = rating
        page: Json = self._json("GET", f"/v1/tenants/{tenant}/feedback", params=params)
        items: list[Json] = page["items"]
        return items

    def keys(self, tenant: str) -> list[Json]:
        """The tenant's API keys (never their secrets)."""
        result: list[Json] = self._json("GET", f"/v1/tenants/{tenant}/keys")
        return result

    def create_key(self, tenant: str, *, name: str, role: str, groups: Sequence[str] = ()) -> Json:
        """Create a key; the response holds its secret, shown once."""
        body = {"name": name, "role": role, "groups": list(groups)}
        result: Json = self._json("POST", f"/v1/tenants/{tenant}/keys", json=body)
        return result

    def revoke_key(self, tenant: str, prefix: str) -> Json:
        """Revoke a key by its prefix."""
        result: Json = self._json("DELETE", f"/v1/tenants/{tenant}/keys/{prefix}")
        return result

    def stats(self, tenant: str) -> Json:
        """The tenant's statistics: documents, chunks, jobs, answers and feedback."""
        result: Json = self._json("GET", f"/v1/tenants/{tenant}/stats")
        return result

    def eval_runs(self, tenant: str) -> list[Json]:
        """The tenant's evaluation runs, newest first."""
        result: list[Json] = self._json("GET", f"/v1/tenants/{tenant}/eval/runs")
        return result

    def eval_run(self, tenant: str, run_id: str) -> Json:
        """One evaluation run with its per-question results."""
        result: Json = self._json("GET", f"/v1/tenants/{tenant}/eval/runs/{run_id}")
        return result

    def eval_compare(self, tenant: str, base: str, head: str) -> Json:
        """Two runs compared metric by metric (paired bootstrap)."""
        params = {"base": base, "head": head}
        result: Json = self._json("GET", f"/v1/tenants/{tenant}/eval/compare", params=params)
        return result
