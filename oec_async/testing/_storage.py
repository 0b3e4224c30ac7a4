"""The simulator's storage half: presigned GETs served like S3, with fault switches.

Honours ``Range`` (``bytes=N-`` and ``bytes=N-M``) and ``If-Range`` (ETag or HTTP date),
sends ``ETag``, ``Last-Modified``, ``Accept-Ranges``, answers 206 / 416, and refuses
expired or tampered signatures with S3's XML ``AccessDenied`` (or GCS's 400
``ExpiredToken``).
"""

from __future__ import annotations

import asyncio
import re
import uuid
from email.utils import parsedate_to_datetime

from aiohttp import web

from oec_async.testing._faults import StreamFault
from oec_async.testing._files import StoredObject
from oec_async.testing._records import RequestRecord
from oec_async.testing._state import SimulatorState

__all__ = ["build_storage_app"]

_CHUNK = 256 * 1024
_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")
_CUT_KINDS = ("drop", "stall", "expire")


def _xml_error(status: int, code: str, message: str) -> web.Response:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        f"<RequestId>SIM{uuid.uuid4().hex[:16].upper()}</RequestId></Error>"
    )
    return web.Response(status=status, text=body, content_type="application/xml")


def _if_range_holds(value: str, obj: StoredObject) -> bool:
    """RFC 9110: a strong ETag must match exactly; a date must equal Last-Modified."""
    value = value.strip()
    if value.startswith(('"', "W/")):
        return not value.startswith("W/") and value == obj.etag
    try:
        return parsedate_to_datetime(value) == obj.last_modified
    except (TypeError, ValueError):
        return False


def build_storage_app(state: SimulatorState, *, origin_name: str = "storage") -> web.Application:
    """Serves ``/bucket/<env>/<backup>/<file>?<signature>`` from the simulator's disk."""
    log = state.log

    async def serve(request: web.Request) -> web.StreamResponse:
        record = log.record(origin_name, request, window_seconds=state.settings.rate_window)
        log.begin_in_flight(request.protocol)
        try:
            response = await _serve(request, record)
            record.status = response.status
            return response
        finally:
            log.end_in_flight(request.protocol)

    async def _serve(request: web.Request, record: RequestRecord) -> web.StreamResponse:
        found = state.resolve_object_path(request.path)
        if found is None:
            return _xml_error(404, "NoSuchKey", "The specified key does not exist.")
        backup, artifact = found
        record.backup_id, record.artifact = backup.id, artifact
        problem = state.signing.check(request.path, request.query)
        if problem == "expired":
            log.expired_refusals += 1
            if state.settings.expiry_style == "gcs":
                return _xml_error(400, "ExpiredToken", "The provided token has expired.")
            return _xml_error(403, "AccessDenied", "Request has expired")
        if problem is not None:
            return _xml_error(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
            )

        rules = state.rules.storage_rules(backup.id, artifact)
        ignore_range = wrong_range = False
        for rule in rules:
            if rule.redirect:
                rule.fire()
                target = f"{state.origins.alt_storage}{request.path_qs}"
                return web.Response(status=307, headers={"Location": target})
            if rule.ignore_range:
                ignore_range = True
                rule.fire()
            elif rule.wrong_range:
                wrong_range = "Range" in request.headers
                if wrong_range:
                    rule.fire()
            else:
                rule.fire()
                headers = {"Retry-After": f"{rule.retry_after:g}"} if rule.retry_after else {}
                response = _xml_error(rule.status, "ServiceUnavailable", "Please reduce your rate.")
                response.headers.update(headers)
                return response

        obj = state.objects(backup)[artifact]
        start, end, status = 0, obj.size, 200
        range_header = request.headers.get("Range")
        if_range = request.headers.get("If-Range")
        if (
            range_header
            and not ignore_range
            and (if_range is None or _if_range_holds(if_range, obj))
        ):
            match = _RANGE.match(range_header.strip())
            if match:
                first = int(match.group(1))
                last = int(match.group(2)) if match.group(2) else obj.size - 1
                if first >= obj.size or last < first:
                    return web.Response(
                        status=416,
                        headers={"Content-Range": f"bytes */{obj.size}", "ETag": obj.etag},
                    )
                start, end, status = first, min(last + 1, obj.size), 206

        stream_rules = state.rules.stream_rules(backup.id, artifact)
        length = end - start
        declared = length
        padding = 0
        for fault in stream_rules:
            if fault.kind == "short_body" and end == obj.size:
                fault.fire()
                end -= fault.amount
                length = declared = end - start
            elif fault.kind == "lie_length":
                fault.fire()
                declared = length + fault.amount
            elif fault.kind == "long_body" and end == obj.size:
                fault.fire()
                padding = fault.amount
                length = declared = length + padding

        stream = web.StreamResponse(status=status)
        stream.headers.update(
            {
                "Accept-Ranges": "bytes",
                "ETag": obj.etag,
                "Last-Modified": obj.last_modified_http,
                "Content-Type": "application/octet-stream",
                "Content-Length": str(declared),
            }
        )
        if status == 206:
            shown = start + 1 if wrong_range else start
            stream.headers["Content-Range"] = f"bytes {shown}-{end - 1}/{obj.size}"
        record.range = range_header
        record.status = status  # known now; the body may take a while
        await stream.prepare(request)
        await _send_body(request, stream, record, obj, start, end, stream_rules)
        if padding and request.transport is not None and not request.transport.is_closing():
            await stream.write(b"\xa5" * padding)  # bytes the object does not have
        if declared != length:  # promised more than we sent: the connection just ends
            _hang_up(request)
        return stream

    async def _send_body(
        request: web.Request,
        response: web.StreamResponse,
        record: RequestRecord,
        obj: StoredObject,
        start: int,
        end: int,
        rules: list[StreamFault],
    ) -> None:
        cuts = sorted(
            (r for r in rules if r.kind in _CUT_KINDS and start <= r.offset < end),
            key=lambda r: r.offset,
        )
        corrupt = [r for r in rules if r.kind == "corrupt" and start <= r.offset < end]
        position = start
        with obj.path.open("rb") as handle:
            handle.seek(start)
            while position < end:
                if request.transport is None or request.transport.is_closing():
                    return  # the client hung up: stop, as a real server would
                limit = min(end, position + _CHUNK)
                cut = cuts[0] if cuts and cuts[0].offset < limit else None
                if cut is not None:
                    limit = cut.offset
                data = handle.read(limit - position)
                if corrupt:
                    data = _apply_corruption(data, position, corrupt)
                if data:
                    try:
                        await response.write(data)
                    except ConnectionError:
                        return  # the client went away
                    position += len(data)
                    record.bytes_sent += len(data)
                    log.count_bytes(record, len(data))
                    bandwidth = state.settings.bandwidth
                    if bandwidth:  # per-connection cap, as object stores have
                        await asyncio.sleep(len(data) / bandwidth)
                if cut is not None:
                    cuts.pop(0)
                    cut.fire()
                    if cut.kind == "stall":
                        await state.rules.wait_released(cut.seconds)
                        continue
                    if cut.kind == "expire":
                        state.signing.expire_all()
                    _hang_up(request)
                    return

    def _apply_corruption(data: bytes, position: int, rules: list[StreamFault]) -> bytes:
        mutable: bytearray | None = None
        for rule in rules:
            if position <= rule.offset < position + len(data):
                mutable = mutable or bytearray(data)
                mutable[rule.offset - position] ^= 0xFF
                rule.fire()
        return bytes(mutable) if mutable is not None else data

    def _hang_up(request: web.Request) -> None:
        if request.transport is not None:
            request.transport.abort()  # no FIN courtesy: the body simply stops

    app = web.Application()
    app.router.add_get("/{key:.+}", serve)
    return app
