"""Acks and silences at any agent of a fleet: a non-holder passes them to the holder.

Only the engine lease's holder may change incidents and silences (its writes are
fenced; another agent's engine state is a stale copy). So an agent without the
lease queues the request in the shared store (agent/state/pg_requests.py) and
waits up to WAIT seconds for the holder's verdict, which it answers as the
holder would have: the same result, or 404 for an incident or silence the holder
does not know. The holder takes queued requests every SERVE_EVERY seconds and
applies each through the same service methods a request at the holder uses.

A request no holder took within WAIT is cancelled, never applied later: the
asker answers 503 and nothing changed, so trying again is safe. A request a
holder took but did not answer in time answers 503 saying it may have been
applied (the holder died mid-way, or the store went away).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any, Protocol

from agent.state.pg_requests import Request, RequestQueue, Verdict
from alerting.model import AckReply, Incident, Silence

if TYPE_CHECKING:
    from agent.state.postgres import PostgresStore
    from alerting.engine import IncidentEngine

log = logging.getLogger("vaktpost.forwarding")
WAIT = 5.0  # seconds a non-holder waits for the holder's verdict
POLL = 0.1  # seconds between its looks
SERVE_EVERY = 0.5  # seconds between the holder's looks at the queue
PRUNE_EVERY = 3600.0


class ForwardError(Exception):
    """The request was not applied (or not known to be): an HTTP status and why."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


class Holder(Protocol):
    """What the forwarder needs of the alerting service (alerting/service.py)."""

    holding: bool
    held: asyncio.Event  # set while holding
    engine: IncidentEngine | None

    async def acknowledge(
        self, incident_id: int, by: str, comment: str, via: str = "", person: str | None = None
    ) -> Incident: ...

    async def acknowledge_code(self, text: str, number: str) -> AckReply: ...

    async def add_silence(
        self, matchers: dict[str, str], starts_at: float, ends_at: float, comment: str, by: str
    ) -> Silence: ...

    async def expire_silence(self, silence_id: int) -> Silence: ...


class Forwarder:
    def __init__(self, service: Holder, store: PostgresStore | None, wait: float = WAIT) -> None:
        self.service = service
        self.queue = None if store is None else RequestQueue(store)
        self.wait = wait

    # -- at a non-holder ---------------------------------------------------------------
    async def acknowledge(
        self, incident_id: int, by: str, comment: str, via: str, person: str | None
    ) -> Incident:
        body = {"incident": incident_id, "by": by, "comment": comment, "via": via}
        answer = await self.ask("ack", {**body, "person": person})
        return Incident.from_json(answer["incident"])

    async def acknowledge_code(self, text: str, number: str) -> AckReply:
        answer = await self.ask("ack_code", {"text": text, "number": number})
        return AckReply(bool(answer["acknowledged"]), answer["message"], answer["incident_id"])

    async def add_silence(
        self, matchers: dict[str, str], starts_at: float, ends_at: float, comment: str, by: str
    ) -> Silence:
        body = {"matchers": matchers, "starts_at": starts_at, "ends_at": ends_at}
        answer = await self.ask("silence", {**body, "comment": comment, "by": by})
        return Silence.from_json(answer["silence"])

    async def expire_silence(self, silence_id: int) -> Silence:
        answer = await self.ask("expire", {"silence": silence_id})
        return Silence.from_json(answer["silence"])

    async def open_incident(self, incident_id: int) -> Incident | None:
        """The open incident as the holder knows it: its engine at the holder, the
        store (the holder's last commit) elsewhere."""
        engine = self.service.engine
        if self.service.holding or self.queue is None:
            return None if engine is None else engine.state.incidents.get(incident_id)
        try:
            data = await self.queue.open_incident(incident_id)
        except Exception as exc:
            raise ForwardError(503, f"the state store cannot be read: {exc}") from None
        return None if data is None else Incident.from_json(data)

    async def ask(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        """Queue the request and wait for the holder's verdict: its answer when it was
        applied, ForwardError otherwise."""
        queue = self.queue
        if queue is None:
            raise ForwardError(503, "this agent does not run the incident engine")
        try:
            request_id = await queue.ask(kind, body, self.wait)
        except Exception as exc:
            raise ForwardError(
                503, f"not applied: this agent does not hold the engine lease and cannot"
                f" pass the request on (state store: {exc})"
            ) from None  # fmt: skip
        deadline = time.monotonic() + self.wait
        verdict = await self._verdict_by(request_id, deadline)
        if verdict is None:
            cancelled = False
            with contextlib.suppress(Exception):
                cancelled = await queue.cancel(request_id)
            if cancelled:
                raise ForwardError(
                    503,
                    f"not applied: no engine holder took it within {self.wait:g} s"
                    " (GET /api/v1/fleet names the holder); nothing changed, try again",
                )
            # Taken, or the store is away: an apply takes a moment; wait as long again.
            verdict = await self._verdict_by(request_id, time.monotonic() + self.wait)
        if verdict is None:
            raise ForwardError(
                503,
                "the engine holder took the request but its verdict did not arrive in time:"
                " it may have been applied; look before trying again",
            )
        if verdict.status != 200:
            raise ForwardError(verdict.status, str(verdict.answer.get("error", "refused")))
        return verdict.answer

    async def _verdict_by(self, request_id: int, deadline: float) -> Verdict | None:
        assert self.queue is not None
        while time.monotonic() < deadline:
            await asyncio.sleep(POLL)
            with contextlib.suppress(Exception):  # a store blip: look again until the deadline
                state, verdict = await self.queue.verdict(request_id)
                if verdict is not None:
                    return verdict
                if state in ("cancelled", "gone"):
                    return None
        return None

    # -- at the holder -----------------------------------------------------------------
    async def serve_forever(self) -> None:
        queue = self.queue
        assert queue is not None
        pruned = time.monotonic()
        while True:
            await self.service.held.wait()
            await asyncio.sleep(SERVE_EVERY)
            if not self.service.holding:
                continue
            try:
                taken = await queue.take()
            except Exception:
                continue  # the store's health is watched and reported elsewhere
            for request in taken:
                await self._serve(queue, request)
            if time.monotonic() - pruned >= PRUNE_EVERY:
                pruned = time.monotonic()
                with contextlib.suppress(Exception):
                    await queue.prune()

    async def _serve(self, queue: RequestQueue, request: Request) -> None:
        if not self.service.holding:
            with contextlib.suppress(Exception):
                await queue.release(request.id)
            return
        verdict = await self.apply(request)
        log.info(
            "applied a request from another agent",
            extra={"kind": request.kind, "from": request.asked_by, "status": verdict.status},
        )
        try:
            await queue.answer(request.id, verdict)
        except Exception as exc:
            log.error(
                "could not record the verdict of a forwarded request",
                extra={"request": request.id, "error": str(exc)},
            )

    async def apply(self, request: Request) -> Verdict:
        """One request through the holder's own methods; never raises."""
        service, body = self.service, request.body
        try:
            # No await between the holding check and the call: the lease cannot move
            # in between, so the call runs as the holder and is never forwarded again.
            if not service.holding:
                return _refused(503, "not applied: the engine lease moved; try again")
            if request.kind == "ack":
                incident = await service.acknowledge(
                    int(body["incident"]), str(body["by"]), str(body["comment"]),
                    str(body["via"]), body.get("person"),
                )  # fmt: skip
                return Verdict(200, {"incident": incident.to_json()})
            if request.kind == "ack_code":
                reply = await service.acknowledge_code(str(body["text"]), str(body["number"]))
                return Verdict(200, _reply_json(reply))
            if request.kind == "silence":
                silence = await service.add_silence(
                    dict(body["matchers"]), float(body["starts_at"]), float(body["ends_at"]),
                    str(body["comment"]), str(body["by"]),
                )  # fmt: skip
                return Verdict(200, {"silence": silence.to_json()})
            if request.kind == "expire":
                silence = await service.expire_silence(int(body["silence"]))
                return Verdict(200, {"silence": silence.to_json()})
            return _refused(400, f"unknown request kind {request.kind[:32]!r}")
        except KeyError as exc:
            return _refused(404, _unknown(request.kind, exc))
        except ForwardError as exc:
            return _refused(exc.status, str(exc))
        except Exception as exc:
            log.exception("a forwarded request failed", extra={"kind": request.kind})
            return _refused(503, f"not applied: {type(exc).__name__}: {exc}"[:300])


def _unknown(kind: str, exc: KeyError) -> str:
    what = exc.args[0] if exc.args else "?"
    if isinstance(what, str):  # a key of the body, not an id the holder does not know
        return f"bad request: missing {what}"
    if kind == "ack":
        return f"no open incident {what}"
    if kind == "expire":
        return f"no active silence {what}"
    return f"unknown {what}"


def _refused(status: int, why: str) -> Verdict:
    return Verdict(status, {"error": why})


def _reply_json(reply: AckReply) -> dict[str, Any]:
    return {
        "acknowledged": reply.acknowledged,
        "message": reply.message,
        "incident_id": reply.incident_id,
    }
