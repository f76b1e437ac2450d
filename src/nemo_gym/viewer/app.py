"""The viewer's FastAPI app: read-only JSON endpoints over the named files, and the static page.

Only the files given in :class:`ViewerSettings` are reachable, by their position
(``/api/files/{id}/...``); no request parameter ever becomes a path. Every response carries a
strict Content-Security-Policy (no inline script, nothing from another origin), so even an
escaping bug in the front end could not run script from a rollout. Each request first picks up
rows appended to its file (``index``); the numbers come from ``stats``, ``query`` and ``compare``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated

import orjson
from fastapi import FastAPI, HTTPException, Query, Request, Response
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.middleware.trustedhost import TrustedHostMiddleware

from nemo_gym.viewer.compare import compare
from nemo_gym.viewer.index import FileIndex
from nemo_gym.viewer.query import RowFilter, row_page
from nemo_gym.viewer.schemas import (
    STATUSES,
    CompareFilter,
    CompareResult,
    FileInfo,
    FileList,
    FileSummary,
    FileVersion,
    RowDetail,
    RowPage,
    SortKey,
    Status,
    TaskPage,
    TaskSort,
)
from nemo_gym.viewer.stats import summarize_file, task_page

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
LOOPBACK_HOSTS = ["127.0.0.1", "localhost", "[::1]", "::1"]
MAX_PAGE = 500


class ViewerSettings(BaseModel):
    """What the viewer serves and how it scores tasks."""

    paths: list[Path] = Field(min_length=1, description="The rollout JSONL files, in order.")
    pass_threshold: float = Field(default=1.0, description="A rollout passes if reward >= this.")
    allowed_hosts: list[str] = Field(
        default_factory=lambda: list(LOOPBACK_HOSTS),
        description="Host headers accepted (guards against DNS rebinding); ['*'] for any.",
    )


def _info(index: FileIndex) -> FileInfo:
    return FileInfo(
        id=index.file_id,
        name=index.path.name,
        path=str(index.path),
        rows=index.rows,
        bytes=index.indexed_bytes,
        version=index.version,
    )


_STATUS_BY_NAME: dict[str, Status] = {status: status for status in STATUSES}


def _statuses(raw: str | None) -> list[Status]:
    out = []
    for name in (s.strip() for s in (raw or "").split(",")):
        if not name:
            continue
        status = _STATUS_BY_NAME.get(name)
        if status is None:
            raise HTTPException(422, f"status: unknown status {name!r}; one of {STATUSES}")
        out.append(status)
    return out


def create_app(settings: ViewerSettings, indexes: list[FileIndex] | None = None) -> FastAPI:
    """The viewer app over ``settings.paths`` (indexes built here unless passed in)."""
    files = indexes or [FileIndex(i, p) for i, p in enumerate(settings.paths)]
    threshold = settings.pass_threshold
    app = FastAPI(title="Gym rollout viewer", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=settings.allowed_hosts)

    @app.middleware("http")
    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        if request.url.path.startswith("/api/"):
            response.headers["Cache-Control"] = "no-store"
        return response

    def current(file_id: int) -> FileIndex:
        if not 0 <= file_id < len(files):
            raise HTTPException(404, f"no file {file_id}: the viewer serves {len(files)} file(s)")
        index = files[file_id]
        try:
            index.refresh()
        except OSError as exc:  # deleted or unreadable now: keep showing what was indexed
            logger.warning("cannot re-read %s: %s", index.path, exc)
        return index

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/api/files")
    def list_files() -> FileList:
        return FileList(
            files=[_info(current(i)) for i in range(len(files))], pass_threshold=threshold
        )

    @app.get("/api/files/{file_id}/version")
    def version(file_id: int) -> FileVersion:
        index = current(file_id)
        return FileVersion(
            id=file_id, rows=index.rows, bytes=index.indexed_bytes, version=index.version
        )

    @app.get("/api/files/{file_id}/summary")
    def summary(file_id: int) -> FileSummary:
        index = current(file_id)
        return summarize_file(index, _info(index), threshold)

    @app.get("/api/files/{file_id}/rows")
    def rows(
        file_id: int,
        offset: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
        sort: SortKey = "line",
        order: Annotated[str, Query(pattern="^(asc|desc)$")] = "asc",
        status: str | None = None,
        kind: str | None = None,
        reward_min: float | None = None,
        reward_max: float | None = None,
        tool: str | None = None,
        task: int | None = None,
        q: Annotated[str | None, Query(max_length=500)] = None,
    ) -> RowPage:
        index = current(file_id)
        filters = RowFilter(
            statuses=_statuses(status),
            kind=kind,
            reward_min=reward_min,
            reward_max=reward_max,
            tool=tool,
            task=task,
            q=q,
        )
        return row_page(index, filters, sort, order == "desc", offset, limit)

    @app.get("/api/files/{file_id}/rows/{row_id}")
    def row(file_id: int, row_id: int) -> RowDetail:
        index = current(file_id)
        if not 0 <= row_id < index.rows:
            raise HTTPException(404, f"no row {row_id}: the file has {index.rows} rows")
        raw = index.read_line(row_id)
        cols = index.columns()
        line = int(cols.line[row_id])
        error = index.errors.get(row_id)
        if error is not None:
            text = raw[:100_000].decode("utf-8", "replace")
            return RowDetail(
                id=row_id, line=line, file_id=file_id, status="malformed", raw=text, error=error
            )
        status = STATUSES[int(cols.status[row_id])]
        return RowDetail(
            id=row_id, line=line, file_id=file_id, status=status, data=orjson.loads(raw)
        )

    @app.get("/api/files/{file_id}/tasks")
    def tasks(
        file_id: int,
        offset: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
        sort: TaskSort = "task",
        order: Annotated[str, Query(pattern="^(asc|desc)$")] = "asc",
    ) -> TaskPage:
        index = current(file_id)
        total, page = task_page(index, threshold, sort, order == "desc", offset, limit)
        return TaskPage(total=total, offset=offset, limit=limit, tasks=page)

    @app.get("/api/compare")
    def compare_runs(
        a: int = 0,
        b: int = 1,
        show: CompareFilter = "all",
        offset: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    ) -> CompareResult:
        ia, ib = current(a), current(b)
        return compare(ia, ib, (_info(ia), _info(ib)), threshold, show, offset, limit)

    return app
