"""Labelling recordings, images, series and table rows: keyboard, bulk, label colours, the "model disagrees" filter,
suggestions and the active-learning queue (logic in ``web/labeling.py``)."""

from __future__ import annotations

import math
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.concurrency import run_in_threadpool

from ...errors import InvalidInput, NotFound
from ..labeling import AUDIO, Labeling, check_label, disagrees, label_columns
from ..site import PageError, Site

PER_PAGE = 100
MAX_BULK = 2000
FILTERS = ("", "unlabelled", "disagree", "queue")


def router(site: Site) -> APIRouter:
    r = APIRouter()
    ws, store, runner, t_of = site.ws, site.store, site.runner, site.t_of
    lab = Labeling(site)
    site.labeling = lab

    def dataset_for_labels(name: str, version: int):
        ds = site.dataset_or_404(name, version)
        if ds.kind not in ("signal", "image", "series", "table"):
            raise PageError(400, "label.only_recordings")
        if ds.kind == "series" and ds.schema.get("label_kind") == "numeric":
            raise PageError(422, "label.no_regression")
        return ds

    def select(ds, items, filter: str, page: int) -> dict:
        """The items of one page of a filter, with what the page shows of each."""
        layer = store.current_labels(ds.id)
        current = items.current(layer)
        order = range(len(items.ids))
        note, model_ref, assist = "", None, None
        if filter == "unlabelled":
            order = [i for i in order if current[i] is None]
        elif filter == "disagree":
            try:
                model_ref, preds = lab.model_predictions(ds, items)
            except NotFound as exc:
                model_ref, preds, note = None, [None] * len(items.ids), str(exc)
            normal = "normal"
            if model_ref:
                normal = (ws.model(model_ref).manifest or {}).get("normal_label", "normal")
            order = [i for i in order if disagrees(current[i], preds[i], normal)]
            if model_ref is None and not note:
                note = "no_model"
            shown_pred = preds
        elif filter == "queue":
            top, _ = store.labels_version(ds.id)
            assist = lab.assist(ds, items, layer, top)
            conf = assist["confidence"]
            unl = [i for i in order if current[i] is None]
            order = sorted(unl, key=lambda i: conf[i]) if assist["ready"] else unl
        pages = max(1, math.ceil(len(order) / PER_PAGE))
        page = min(max(1, page), pages)
        chosen = list(order)[(page - 1) * PER_PAGE: page * PER_PAGE]
        rows = []
        for i in chosen:
            it = {"id": items.ids[i], "title": items.titles[i], "idx": i, "label": current[i]}
            if items.kind == "signal":
                it["audio"] = Path(items.ids[i]).suffix.lower() in AUDIO
            elif items.kind == "table":
                it["cells"] = items.cells[i]
            if filter == "disagree":
                p = shown_pred[i]
                it["model"] = p  # "__abnormal__": an anomaly model says "not normal"
            if assist is not None and assist["ready"]:
                it["suggest"], it["confidence"] = assist["suggest"][i], assist["confidence"][i]
            rows.append(it)
        return {"rows": rows, "pages": pages, "page": page, "n_match": len(order), "layer": layer, "note": note,
                "model_ref": model_ref, "n_unlabelled": sum(1 for v in current if v is None)}

    @r.get("/label/{name}/{version}", response_class=HTMLResponse)
    def label_page(request: Request, name: str, version: int, page: int = 1, filter: str = "", column: str = ""):
        site.require(request, "labeler")
        ds = dataset_for_labels(name, version)
        filter = filter if filter in FILTERS else ""
        items = lab.items(ds, column or None)
        sel = select(ds, items, filter, page)
        defs = lab.definitions(ds, items, sel["layer"])
        n_layer = store.label_changes(ds.id)
        base_q = f"?column={items.column}&" if items.column else "?"
        url = f"/label/{ds.name}/{ds.version}"
        js = {"dataset": f"{ds.name}/{ds.version}", "kind": items.kind, "items": sel["rows"], "defs": defs[:9],
              "offset": (sel["page"] - 1) * PER_PAGE, "total": sel["n_match"],  # "101 of 600" on page 2
              "labels": [d["name"] for d in defs][:9], "cell_names": items.cell_names, "column": items.column,
              "base": f"/datasets/{ds.name}/{ds.version}", "post": url, "bulk": url + "/bulk", "defs_url": url + "/defs",
              "assist": f"{url}/assist?column={items.column or ''}&filter={filter}&page={sel['page']}",
              "messages": t_of(request).subset("label.js.")}
        return site.render(request, "label.html", nav="data", ds=ds, page=sel["page"], pages=sel["pages"],
                           filter=filter, n_items=len(items.ids), n_shown=sel["n_match"], n_layer=n_layer,
                           defs=defs[:9], js=js, items=sel["rows"], kind=items.kind, column=items.column,
                           columns=label_columns(ds) if items.kind == "table" else [], base_q=base_q,
                           cell_names=items.cell_names, note=sel["note"], model_ref=sel["model_ref"],
                           n_unlabelled=sel["n_unlabelled"])

    @r.get("/label/{name}/{version}/assist")
    def label_assist(request: Request, name: str, version: int, column: str = "", filter: str = "", page: int = 1):
        """Suggestions (label, confidence) for the items of a page, and the learning curve."""
        site.require(request, "labeler")
        ds = dataset_for_labels(name, version)
        items = lab.items(ds, column or None)
        layer = store.current_labels(ds.id)
        top, _ = store.labels_version(ds.id)
        res = lab.assist(ds, items, layer, top)
        sel = select(ds, items, filter if filter in FILTERS else "", page)
        out = {}
        if res["ready"]:
            out = {it["id"]: [res["suggest"][it["idx"]], res["confidence"][it["idx"]]] for it in sel["rows"]}
        return JSONResponse({"ready": res["ready"], "need": res["need"], "n_labelled": res["n_labelled"],
                             "cv_accuracy": res["cv_accuracy"], "curve": res["curve"], "suggestions": out})

    async def save(request: Request, name: str, version: int, ids: list[str], label: str | None, column: str):
        user = site.require(request, "labeler")
        ds = dataset_for_labels(name, version)
        items = await run_in_threadpool(lab.items, ds, column or None)
        missing = [i for i in ids if i not in items.index]
        if missing:
            raise NotFound("No such item in this dataset.")
        last = await run_in_threadpool(store.add_labels, ds.id, ids, label, user["name"])
        n = await run_in_threadpool(store.label_changes, ds.id)
        return last, n

    @r.post("/label/{name}/{version}")
    async def label_post(request: Request, name: str, version: int):
        form = await site.form_of(request)
        item = str(form.get("item"))
        label = check_label(form.get("label"))
        column = item.split(":", 1)[1] if ":" in item and item.split(":", 1)[0].isdigit() else ""
        row_id, n = await save(request, name, version, [item], label, column)
        return JSONResponse({"ok": True, "id": row_id, "item": item, "label": label, "saved": n})

    @r.post("/label/{name}/{version}/bulk")
    async def label_bulk(request: Request, name: str, version: int):
        """One label for many items (one per line in ``items``)."""
        form = await site.form_of(request)
        ids = [s for s in str(form.get("items")).split("\n") if s]
        if not ids:
            raise InvalidInput("Select at least one item to label.")
        if len(ids) > MAX_BULK:
            raise InvalidInput(f"At most {MAX_BULK} items can be labelled at once; got {len(ids)}.")
        label = check_label(form.get("label"))
        column = str(form.get("column") or "")
        _, n = await save(request, name, version, list(dict.fromkeys(ids)), label, column)
        return JSONResponse({"ok": True, "items": len(set(ids)), "label": label, "saved": n})

    @r.post("/label/{name}/{version}/defs")
    async def label_defs(request: Request, name: str, version: int):
        """Add a label (or change its colour)."""
        site.require(request, "labeler")
        form = await site.form_of(request)
        ds = dataset_for_labels(name, version)
        items = await run_in_threadpool(lab.items, ds, str(form.get("column") or "") or None)
        layer = store.current_labels(ds.id)
        defs = await run_in_threadpool(lab.save_definition, ds, items, layer, str(form.get("name")),
                                       str(form.get("color") or "") or None)
        return JSONResponse({"ok": True, "defs": defs[:9]})

    @r.post("/label/{name}/{version}/apply")
    async def label_apply(request: Request, name: str, version: int):
        user = site.require(request, "labeler")
        await site.form_of(request)
        ds = dataset_for_labels(name, version)
        job_id = runner.start("relabel", {"dataset": ds.ref}, user["name"])
        return site.done(request, f"/jobs/{job_id}", job=job_id)

    return r
