"""Rate limits per tenant and per credential, on requests and on LLM tokens (the `limits` library).

Every authenticated route counts one request against the tenant's and the
credential's request windows (`request_limit`). Routes that generate check the
token windows before generating and charge the real usage (prompt plus
completion tokens of the answer) afterwards (`token_meter`). A refusal is a 429
with the JSON error shape, ``Retry-After`` and ``X-RateLimit-*`` headers; the
headers of the tightest request window are sent on successful responses too
(`RateLimitHeadersMiddleware`).

Storage is ``memory://`` (one process) by default and ``redis://...`` in
production, where every API replica shares the same windows. When that storage
cannot be reached, ``limits.on_storage_error`` decides: ``allow`` serves the
request without limits (fail open), ``refuse`` answers 503 (fail closed); either
way the failure is logged and counted, and the next check tries the storage again.
"""

# No `from __future__ import annotations`: FastAPI must see the dependency factories'
# annotations as objects (they close over the principal dependency).

import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

import structlog
from fastapi import Depends, Request
from limits import RateLimitItem, parse
from limits.errors import StorageError
from limits.storage import storage_from_string
from limits.strategies import (
    MovingWindowRateLimiter,
    RateLimiter,
    SlidingWindowCounterRateLimiter,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from citewise.answer.stream import AnswerEvent, FinalEvent
from citewise.core.errors import RateLimitedError, RateLimitsUnavailableError
from citewise.core.metrics import record_rate_limit_storage_error, record_rate_limited
from citewise.core.settings import LimitSettings
from citewise.core.tenancy import Principal

log = structlog.get_logger(__name__)

NAMESPACE = "citewise"
STATE_KEY = "rate_limit_headers"
"""Where a request's rate-limit headers wait (``request.state``) for the response."""
WARN_EVERY_S = 30.0
"""While the storage stays unreachable, its warning is logged at most this often."""


@dataclass(frozen=True)
class Window:
    """One scope's rate-limit window after a request: size, what is left, when it resets."""

    scope: str
    limit: int
    remaining: int
    reset: float
    """Epoch seconds when the window has room again."""

    def headers(self) -> dict[str, str]:
        """``X-RateLimit-Limit``, ``-Remaining`` and ``-Reset`` (epoch seconds) of this window."""
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(max(self.remaining, 0)),
            "X-RateLimit-Reset": str(math.ceil(self.reset)),
        }

    @property
    def retry_after(self) -> int:
        """Whole seconds until the window has room (at least 1)."""
        return max(1, math.ceil(self.reset - time.time()))


class Limiter:
    """The request and token limits of every tenant and credential.

    Args:
        settings: Limits and their storage.
    """

    def __init__(self, settings: LimitSettings) -> None:
        self.settings = settings
        options: dict[str, float] = {}
        if settings.storage_uri.startswith("redis"):
            # Fail fast: a request must not wait on an unreachable Redis.
            timeout = settings.storage_timeout_s
            options = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
        self.storage = storage_from_string(settings.storage_uri, wrap_exceptions=True, **options)
        self._warned_at = -WARN_EVERY_S
        strategy = (
            MovingWindowRateLimiter
            if settings.strategy == "moving-window"
            else SlidingWindowCounterRateLimiter
        )
        self.strategy: RateLimiter = strategy(self.storage)
        self.requests = {
            "tenant": parse(settings.tenant_requests),
            "key": parse(settings.key_requests),
        }
        self.tokens = {"tenant": parse(settings.tenant_tokens), "key": parse(settings.key_tokens)}

    def hit_request(self, principal: Principal) -> Window | None:
        """Count one request of `principal`; returns the tightest request window.

        The credential's window is counted first, so a request refused there
        costs its tenant nothing. None when the storage is unreachable and
        ``on_storage_error`` is allow (the request goes on, unlimited).

        Raises:
            RateLimitedError: The credential's or the tenant's request window is full.
            RateLimitsUnavailableError: The storage is unreachable and set to refuse.
        """
        try:
            return self._hit_request(principal)
        except StorageError as exc:
            self._storage_failed(exc, refuse=True)
            return None

    def _hit_request(self, principal: Principal) -> Window:
        windows = []
        for scope in ("key", "tenant"):
            item = self.requests[scope]
            ident = _identity(principal, scope)
            if not self.strategy.hit(item, "requests", scope, ident):
                window = self._window(item, "requests", scope, ident)
                self._refuse("requests", window)
            windows.append(self._window(item, "requests", scope, ident))
        return min(windows, key=lambda w: (w.remaining, -w.reset))

    def check_tokens(self, principal: Principal) -> None:
        """Refuse before generating when a token window of `principal` is already used up.

        Raises:
            RateLimitedError: The credential's or the tenant's token window is exhausted.
            RateLimitsUnavailableError: The storage is unreachable and set to refuse.
        """
        for scope in ("key", "tenant"):
            item = self.tokens[scope]
            try:
                window = self._window(item, "tokens", scope, _identity(principal, scope))
            except StorageError as exc:
                self._storage_failed(exc, refuse=True)
                return
            if window.remaining <= 0:
                self._refuse("tokens", window)

    def charge_tokens(self, principal: Principal, usage: Mapping[str, int]) -> int:
        """Charge the real LLM usage of an answer (prompt + completion tokens); returns it.

        Usage beyond what is left of a window fills it (the next requests are
        refused until it frees); it is not carried into the next window. The
        answer is already made: an unreachable storage is logged, never raised.
        """
        cost = int(usage.get("prompt_tokens", 0)) + int(usage.get("completion_tokens", 0))
        if cost <= 0:
            return 0
        try:
            for scope in ("key", "tenant"):
                item = self.tokens[scope]
                ident = _identity(principal, scope)
                if not self.strategy.hit(item, "tokens", scope, ident, cost=cost):
                    left = self._window(item, "tokens", scope, ident).remaining
                    if left > 0:
                        self.strategy.hit(item, "tokens", scope, ident, cost=left)
        except StorageError as exc:
            self._storage_failed(exc, refuse=False)
        return cost

    def storage_reachable(self) -> bool:
        """Whether the storage answers now (for the readiness probe)."""
        try:
            return bool(self.storage.check())
        except Exception:
            return False

    def _storage_failed(self, exc: StorageError, *, refuse: bool) -> None:
        """Count and log a check the storage could not answer; refuse if so configured."""
        refused = refuse and self.settings.on_storage_error == "refuse"
        record_rate_limit_storage_error("refused" if refused else "allowed")
        now = time.monotonic()
        if now - self._warned_at >= WARN_EVERY_S:
            self._warned_at = now
            log.warning(
                "rate_limit_storage_unreachable",
                error=str(exc),
                on_storage_error=self.settings.on_storage_error,
            )
        if refused:
            raise RateLimitsUnavailableError(
                "rate limits cannot be checked right now (their store is unreachable); "
                "retry shortly"
            ) from exc

    def reset(self) -> None:
        """Forget every window (tests)."""
        self.storage.reset()

    def _window(self, item: RateLimitItem, kind: str, scope: str, ident: str) -> Window:
        stats = self.strategy.get_window_stats(item, kind, scope, ident)
        return Window(
            scope=scope, limit=item.amount, remaining=stats.remaining, reset=stats.reset_time
        )

    @staticmethod
    def _refuse(kind: str, window: Window) -> None:
        record_rate_limited(kind, window.scope)
        log.info("rate_limited", limit=kind, scope=window.scope, retry_after=window.retry_after)
        who = "your tenant" if window.scope == "tenant" else "your credential"
        unit = "requests" if kind == "requests" else "LLM tokens"
        raise RateLimitedError(
            f"rate limit of {window.limit} {unit} per window for {who} reached; "
            f"retry in {window.retry_after} s",
            retry_after=window.retry_after,
            headers=window.headers(),
        )


def _identity(principal: Principal, scope: str) -> str:
    """The window's owner: the tenant, or the credential (the tenant's user without one)."""
    if scope == "tenant":
        return principal.tenant_id
    return principal.credential_id or f"user:{principal.tenant_id}:{principal.user_id}"


def get_limiter(request: Request) -> Limiter | None:
    """The app's limiter (None when limits are disabled)."""
    limiter: Limiter | None = getattr(request.app.state, "limiter", None)
    return limiter


PrincipalDependency = Callable[..., Principal]


def request_limit(principal_dependency: PrincipalDependency) -> Callable[..., Principal]:
    """A dependency that counts the request against its principal's request windows.

    Args:
        principal_dependency: The route's principal dependency (FastAPI resolves
            it once per request, so the route may use it too).

    Returns:
        A dependency returning the principal, or raising `RateLimitedError` (429).
    """

    def limited(
        request: Request,
        principal: Annotated[Principal, Depends(principal_dependency)],
    ) -> Principal:
        limiter = get_limiter(request)
        if limiter is not None:
            try:
                window = limiter.hit_request(principal)
            except RateLimitedError as exc:
                setattr(request.state, STATE_KEY, exc.headers)
                raise
            if window is not None:
                setattr(request.state, STATE_KEY, window.headers())
        return principal

    return limited


class TokenMeter:
    """Token limits of one request: checked before generating, charged with the real usage.

    Args:
        limiter: The app's limiter (None: limits disabled, nothing is checked or charged).
        principal: Who asks.
    """

    def __init__(self, limiter: Limiter | None, principal: Principal) -> None:
        self.limiter = limiter
        self.principal = principal

    def check(self) -> None:
        """Refuse (429) when a token window is exhausted already."""
        if self.limiter is not None:
            self.limiter.check_tokens(self.principal)

    def charge(self, usage: Mapping[str, int]) -> None:
        """Charge an answer's usage to the tenant's and the credential's token windows."""
        if self.limiter is not None:
            self.limiter.charge_tokens(self.principal, usage)

    def charged(self, events: Iterator[AnswerEvent]) -> Iterator[AnswerEvent]:
        """Pass a stream's events through, charging the final answer's usage when it comes."""
        try:
            for event in events:
                if isinstance(event, FinalEvent):
                    self.charge(event.answer.usage)
                yield event
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                close()


def token_meter(principal_dependency: PrincipalDependency) -> Callable[..., TokenMeter]:
    """A dependency that refuses (429) when a token window is exhausted, else gives a meter.

    Args:
        principal_dependency: The route's principal dependency.
    """

    def meter(
        request: Request,
        principal: Annotated[Principal, Depends(principal_dependency)],
    ) -> TokenMeter:
        tokens = TokenMeter(get_limiter(request), principal)
        tokens.check()
        return tokens

    return meter


class RateLimitHeadersMiddleware:
    """Add the request's ``X-RateLimit-*`` headers (set by `request_limit`) to its response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; add the headers to the response start."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        state: dict[str, Any] = scope.setdefault("state", {})  # shared with request.state

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra: dict[str, str] | None = state.get(STATE_KEY)
                if extra:
                    present = {name.lower() for name, _ in message.get("headers", [])}
                    headers = list(message.get("headers", []))
                    for name, value in extra.items():
                        if name.lower().encode() not in present:
                            headers.append((name.lower().encode(), value.encode()))
                    message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def build_limiter(settings: LimitSettings) -> Limiter | None:
    """The limiter of an app, or None when limits are disabled."""
    return Limiter(settings) if settings.enabled else None
