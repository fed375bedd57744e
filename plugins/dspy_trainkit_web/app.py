"""The Starlette application: routes, templates, and the actions that change data.

`build_app(worker, config)` makes the app; `trainkit serve` runs it with uvicorn and tests drive it with
Starlette's TestClient. Every data access goes through the `KitWorker` (one thread owns the kit). With
`read_only` the POST routes are not registered at all. Every action goes through `action()`, which checks the
CSRF token before calling it and names the acting user in the audit trail (`web:USER`).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import attrs
import jinja2
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from dspy_trainkit.pluginkit import NotFoundError, StoreError, TrainkitError, redact

from . import charts, reads
from .access import KitWorker
from .security import CSRF_COOKIE, Guard, csrf_ok

HERE = Path(__file__).parent
STATUSES = ("accepted", "rejected", "archived", "candidate")


@attrs.frozen
class AppConfig:
    hosts: frozenset[str]
    token: str | None = None
    read_only: bool = False
    user: str = "web"


def status_for(exc: Exception) -> int:
    """A missing thing is 404, the store being unreachable or failing is the server's fault (503: retry later),
    anything else the request's (400)."""
    if isinstance(exc, NotFoundError):
        return 404
    return 503 if isinstance(exc, StoreError) else 400


def _templates() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"),
                             autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
                             undefined=jinja2.StrictUndefined)
    env.filters["json"] = lambda v: orjson.dumps(v, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS,
                                                 default=str).decode()
    env.filters["when"] = lambda t: time.strftime("%Y-%m-%d %H:%M", time.localtime(t)) if t else "-"
    env.filters["num"] = lambda v, d=3: "-" if v is None else f"{v:.{d}f}"
    env.filters["short"] = lambda text, n=90: (text if len(text) <= n else text[:n - 1] + "…")
    env.filters["text"] = lambda fields: " | ".join(
        f"{k}: {v if isinstance(v, str) else orjson.dumps(v).decode()}" for k, v in fields.items())
    env.globals.update(histogram=charts.histogram, heatmap=charts.heatmap, score_history=charts.score_history,
                       statuses=STATUSES, filters=reads.FILTERS)
    return env


def build_app(worker: KitWorker, config: AppConfig) -> Starlette:
    env = _templates()
    actor = f"web:{config.user}"

    def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        page = env.get_template(name).render(request=request, csrf=request.scope.get("state", {}).get("csrf", ""),
                                             read_only=config.read_only, **context)
        return HTMLResponse(page, status_code=status_code)

    def page(name: str, read: Callable[..., dict[str, Any]], *keys: str) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            args = [request.path_params.get(k) or request.query_params.get(k) or None for k in keys]
            try:
                data = await worker(read, *args)
            except (TrainkitError, ValueError) as exc:
                return render(request, "error.html", status_code=status_for(exc),
                              message=redact(str(exc)))
            return render(request, name, **data)
        return endpoint

    async def examples(request: Request) -> Response:
        params = dict(request.query_params)
        try:
            data = await worker(reads.examples_page, params)
        except (TrainkitError, ValueError) as exc:
            return render(request, "error.html", status_code=status_for(exc), message=redact(str(exc)))
        next_url = None
        if data["next_after"]:
            next_url = "/examples?" + urlencode({**{k: v for k, v in params.items() if v and k != "after"},
                                                 "after": data["next_after"]})
        return render(request, "examples.html", params=params, next_url=next_url, **data)

    async def review(request: Request) -> Response:
        order = request.query_params.get("order") or "store"
        try:
            data = await worker(reads.review_page, request.query_params.get("task") or None, order)
        except (TrainkitError, ValueError) as exc:
            return render(request, "error.html", status_code=status_for(exc), message=redact(str(exc)))
        return render(request, "review.html", **data)

    async def snapshots(request: Request) -> Response:
        a, b = request.query_params.get("a"), request.query_params.get("b")
        diff = None
        try:
            listed = await worker(lambda kit: kit.store.list_snapshots())
            if a and b:
                from dspy_trainkit.pluginkit import snapshot_diff

                diff = await worker(snapshot_diff, a, b)
        except TrainkitError as exc:
            return render(request, "error.html", status_code=404, message=redact(str(exc)))
        return render(request, "snapshots.html", snapshots=list(reversed(listed)), diff=diff, a=a, b=b)

    async def run_detail(request: Request) -> Response:
        try:
            run = await worker(lambda kit, i: kit.run(i), request.path_params["run_id"])
        except TrainkitError as exc:
            return render(request, "error.html", status_code=404, message=redact(str(exc)))
        return render(request, "run.html", run=run)

    async def plugins(request: Request) -> Response:
        infos = await worker(lambda kit: kit.pm.plugin_infos())
        return render(request, "plugins.html", plugins=infos)

    async def settings(request: Request) -> Response:
        from dspy_trainkit.pluginkit import settings_data

        return render(request, "settings.html", settings=await worker(settings_data))

    async def live(request: Request) -> Response:
        """The overview's self-refresh: htmx polls with the signature the page was made from; 204 while nothing
        changed, else `HX-Refresh` (htmx reloads the page). Without `seen`: the current signature as text."""
        seen = request.query_params.get("seen") or None
        now = await worker(reads.signature, seen)
        if seen is None:
            return PlainTextResponse(now)
        return Response(status_code=204) if now == seen else Response(headers={"HX-Refresh": "true"})

    async def healthz(request: Request) -> Response:
        try:
            count = await worker(lambda kit: kit.count())
        except TrainkitError as exc:
            return PlainTextResponse(f"store unavailable: {redact(str(exc))}\n", status_code=503)
        return PlainTextResponse(f"ok {count} examples\n")

    async def metrics(request: Request) -> Response:
        from dspy_trainkit.pluginkit import metrics_text

        return PlainTextResponse(await worker(metrics_text), media_type="text/plain; version=0.0.4")

    # -- actions (POST only, never registered with read_only) ------------------------------------------
    def action(fn: Callable[[Request, dict[str, Any]], Awaitable[Response]]
               ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            form = await request.form()
            given = form.get("csrf") or request.headers.get("x-csrf-token")
            if not csrf_ok(request.cookies.get(CSRF_COOKIE), str(given) if given else None):
                return PlainTextResponse("Refused: the form's CSRF token does not match; reload the page and "
                                         "retry.", status_code=403)
            fields = {k: form.getlist(k) if k == "ids" else form.get(k) for k in form}
            try:
                return await fn(request, fields)
            except (TrainkitError, ValueError) as exc:
                return render(request, "error.html", status_code=status_for(exc), message=redact(str(exc)))
            finally:
                await worker(reads.forget)  # readiness and counts reused for 60 s must show this change
        return endpoint

    def back(fields: dict[str, Any], default: str) -> RedirectResponse:
        target = str(fields.get("next") or default)
        if not target.startswith("/") or target.startswith("//"):  # only ever back into this dashboard
            target = default
        return RedirectResponse(target, status_code=303)

    async def set_status(request: Request, fields: dict[str, Any]) -> Response:
        status = str(fields.get("status") or "")
        if status not in STATUSES:
            raise ValueError(f"status {status!r}: use one of {', '.join(STATUSES)}")
        reason = str(fields.get("reason") or "").strip()
        if status == "rejected" and not reason:
            raise ValueError("a rejection needs a reason (it goes into the audit trail)")
        example_id = request.path_params["example_id"]
        await worker(lambda kit: kit.set_status(status, ids=[example_id], actor=actor, reason=reason))
        return back(fields, f"/examples/{example_id}")

    async def bulk(request: Request, fields: dict[str, Any]) -> Response:
        ids = [str(i) for i in fields.get("ids") or []]
        status = str(fields.get("status") or "")
        reason = str(fields.get("reason") or "").strip()
        if not ids:
            raise ValueError("select at least one example for a bulk action")
        if status not in STATUSES:
            raise ValueError(f"status {status!r}: use one of {', '.join(STATUSES)}")
        if status == "rejected" and not reason:
            raise ValueError("a rejection needs a reason (it goes into the audit trail)")
        await worker(lambda kit: kit.set_status(status, ids=ids, actor=actor, reason=reason or "bulk review"))
        return back(fields, "/review")

    async def edit(request: Request, fields: dict[str, Any]) -> Response:
        example_id = request.path_params["example_id"]
        changes: dict[str, Any] = {}
        for name in ("inputs", "outputs"):
            raw = str(fields.get(name) or "").strip()
            if raw:
                try:
                    value = orjson.loads(raw)
                except orjson.JSONDecodeError as exc:
                    raise ValueError(f"{name}: not JSON ({exc}); give an object such as {{\"question\": \"...\"}}") \
                        from None
                if not isinstance(value, dict):
                    raise ValueError(f"{name}: give a JSON object of fields, not {type(value).__name__}")
                changes[name] = value
        for label in ("domain", "topic", "difficulty"):
            if label in fields:
                changes[label] = str(fields[label]).strip() or None
        status = str(fields.get("status") or "") or None
        if status is not None and status not in STATUSES:
            raise ValueError(f"status {status!r}: use one of {', '.join(STATUSES)}")
        reason = str(fields.get("reason") or "edited in the dashboard")
        await worker(lambda kit: kit.edit(example_id, actor=actor, reason=reason, status=status, **changes))
        return back(fields, f"/examples/{example_id}")

    async def apply_recommendation(request: Request, fields: dict[str, Any]) -> Response:
        task, rec_id = str(fields.get("task") or ""), str(fields.get("rec_id") or "")
        await worker(lambda kit: kit.apply_recommendation(task, rec_id, actor=actor))
        return back(fields, f"/effectiveness?task={task}")

    async def acknowledge(request: Request, fields: dict[str, Any]) -> Response:
        alert_id = request.path_params["alert_id"]
        await worker(lambda kit: kit.acknowledge_alert(alert_id, actor=actor))
        return back(fields, "/effectiveness")

    routes = [
        Route("/", page("overview.html", reads.overview)),
        Route("/live", live),
        Route("/ready", page("_ready.html", reads.readiness_part, "task")),
        Route("/examples", examples),
        Route("/examples/{example_id}", page("example.html", reads.example_detail, "example_id")),
        Route("/review", review),
        Route("/quality", page("quality.html", reads.quality_page, "task")),
        Route("/snapshots", snapshots),
        Route("/snapshots/{name}", page("snapshot.html", reads.snapshot_page, "name")),
        Route("/runs", page("runs.html", reads.runs_page, "task")),
        Route("/runs/{run_id}", run_detail),
        Route("/effectiveness", page("effectiveness.html", reads.effectiveness_page, "task")),
        Route("/plugins", plugins),
        Route("/settings", settings),
        Route("/healthz", healthz),
        Route("/metrics", metrics),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    if not config.read_only:
        routes += [
            Route("/examples/{example_id}/status", action(set_status), methods=["POST"]),
            Route("/examples/{example_id}/edit", action(edit), methods=["POST"]),
            Route("/review/bulk", action(bulk), methods=["POST"]),
            Route("/recommendations/apply", action(apply_recommendation), methods=["POST"]),
            Route("/alerts/{alert_id}/acknowledge", action(acknowledge), methods=["POST"]),
        ]
    app = Starlette(routes=routes)
    app.add_middleware(Guard, hosts=set(config.hosts), token=config.token)
    return app
