"""The sandbox board: `GET /` beside the MCP endpoint when serving HTTP with --sandbox. The sandbox's
pipelines as boards (one column per stage, a card per opportunity), the journal's recent writes (a
failed one says why), and the contacts and sellers an agent can name. Rendered on the server, so
the page is whole before any script runs; a few lines of script only swap in a fresh copy of the
same HTML (`GET /board.html`) every second and a half. `GET /board.json` is the data, for machines.
"""

from __future__ import annotations

import time
from html import escape
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from opportunity_mcp.journal import Journal, Row
from opportunity_mcp.sandbox.state import LC_LOCATION, PLAZBOT_WORKSPACE, SandboxState

TOOLS = {"create_opportunity": "create", "update_opportunity_field": "update", "upsert_opportunity": "upsert"}


async def board_data(state: SandboxState, journal: Journal) -> dict[str, Any]:
    seed = state.seed
    with state.lock:
        plazbot = [dict(o) for o in state.plazbot.values()]
        leadconnector = [dict(o) for o in state.leadconnector.values()]

    # People by name, not by id: the board is read by a person.
    names = {
        **{cid: person[0] for cid, person in (seed.plazbot_people | seed.lc_people).items()},
        **{uid: seller[0] for uid, seller in (seed.plazbot_sellers | seed.lc_sellers).items()},
    }

    def card(opp: dict[str, Any], *, amount: str, assignee: str, when: str, contact: str) -> dict[str, Any]:
        return {
            "id": opp["id"],
            "code": opp.get("opportCode"),
            "name": opp.get("name") or "(no name)",
            "amount": opp.get(amount),
            "assignee": names.get(opp.get(assignee) or "", opp.get(assignee)),
            "contact": names.get(opp.get(contact) or "", opp.get(contact)) or None,
            "status": opp.get("status"),
            "when": opp.get(when) or opp.get("creationDate") or opp.get("createdAt"),
        }

    def columns(
        stages: tuple[tuple[str, str], ...], opps: list[dict[str, Any]], key: str, **fields: str
    ) -> list[dict[str, Any]]:
        known = {stage_id for stage_id, _ in stages}
        out = [{"id": None, "name": "No stage", "cards": [card(o, **fields) for o in opps if o.get(key) not in known]}]
        out += [
            {"id": stage_id, "name": name, "cards": [card(o, **fields) for o in opps if o.get(key) == stage_id]}
            for stage_id, name in stages
        ]
        return [c for c in out if c["id"] is not None or c["cards"]]

    plazbot_fields = {"amount": "amount", "assignee": "assignedAgentId", "when": "updatedDate", "contact": "contactId"}
    lc_fields = {"amount": "monetaryValue", "assignee": "assignedTo", "when": "updatedAt", "contact": "contactId"}
    pipelines = [
        {
            "title": f"Plazbot / Wabotify · workspace {PLAZBOT_WORKSPACE}",
            "columns": columns(seed.plazbot_stages, plazbot, "stageId", **plazbot_fields),
        }
    ]
    for pipeline_id, stages in seed.lc_pipelines.items():
        in_pipeline = [o for o in leadconnector if o.get("pipelineId") == pipeline_id]
        name = seed.lc_pipeline_names.get(pipeline_id, pipeline_id)
        pipelines.append(
            {
                "title": f"LeadConnector · pipeline {name}",
                "columns": columns(stages, in_pipeline, "pipelineStageId", **lc_fields),
            }
        )
    writes = [_write(row) for row in await journal.recent(15)]
    people = {
        f"Plazbot / Wabotify ({PLAZBOT_WORKSPACE})": _people(seed.plazbot_people, seed.plazbot_sellers),
        f"LeadConnector ({LC_LOCATION})": _people(seed.lc_people, seed.lc_sellers),
    }
    return {"pipelines": pipelines, "writes": writes, "people": people}


def _write(row: Row) -> dict[str, Any]:
    """One journal row for a person: what, when, how it ended and, when it did not land, why."""
    reason = None
    if row.outcome == "failed":
        reason = f"the CRM answered HTTP {row.status}" if row.status else "refused before it was sent"
    elif row.outcome == "unknown":
        reason = "no answer: it may or may not have landed"
    return {
        "at": time.strftime("%H:%M:%S", time.localtime(row.at)),
        "tool": TOOLS.get(row.tool, row.tool),
        "account": row.account,
        "outcome": row.outcome,
        "reason": reason,
        "code": row.code,
        "id": row.opportunity_id,
        "ms": row.latency_ms,
    }


def _people(contacts: dict[str, tuple[str, str, str | None]], sellers: dict[str, tuple[str, str]]) -> dict[str, Any]:
    return {
        "contacts": [
            {"name": n, "phone": p if p.startswith("+") else f"+{p}", "email": e} for n, p, e in contacts.values()
        ],
        "sellers": [{"name": n, "email": e} for n, e in sellers.values()],
    }


def _money(value: Any) -> str:
    return f"{value:,.2f}" if isinstance(value, int | float) and not isinstance(value, bool) else ""


def _card(c: dict[str, Any]) -> str:
    lines = [f"{escape(c['code'] or c['id'])}" + (f" · {escape(c['status'])}" if c["status"] else "")]
    lines += [f"contact {escape(c['contact'])}"] if c["contact"] else []
    lines += [f"owner {escape(c['assignee'])}"] if c["assignee"] else []
    lines += [escape(str(c["when"] or "").replace("T", " ")[:19])]
    small = "".join(f"<small>{line}</small>" for line in lines)
    return f'<div class="card"><b>{escape(c["name"])}</b><span class="amt">{_money(c["amount"])}</span>{small}</div>'


def render(data: dict[str, Any]) -> str:
    """The board's body, as the page shows it and as each refresh swaps it in."""
    boards = []
    for pipeline in data["pipelines"]:
        cols = "".join(
            f'<div class="col"><h3>{escape(col["name"])} ({len(col["cards"])})</h3>'
            + ("".join(_card(c) for c in col["cards"]) or '<div class="empty">no deals</div>')
            + "</div>"
            for col in pipeline["columns"]
        )
        boards.append(f'<h2>{escape(pipeline["title"])}</h2><div class="board">{cols}</div>')
    rows = (
        "".join(
            f"<tr><td>{escape(w['at'])}</td><td>{escape(w['tool'])}</td>"
            f'<td class="{escape(w["outcome"])}">{escape(w["outcome"])}'
            + (f"<small>{escape(w['reason'])}</small>" if w["reason"] else "")
            + f"</td><td>{escape(w['code'] or w['id'] or '')}</td></tr>"
            for w in data["writes"]
        )
        or '<tr><td class="empty">no writes yet</td></tr>'
    )

    def person(p: dict[str, Any]) -> str:
        email = f" · {escape(p['email'])}" if p["email"] else ""
        return f"<li>{escape(p['name'])} <small>{escape(p['phone'])}{email}</small></li>"

    people = "".join(
        f"<h3>{escape(crm)}</h3><ul>"
        + "".join(person(p) for p in who["contacts"])
        + "</ul><p><small>sellers: "
        + ", ".join(f"{escape(s['name'])} ({escape(s['email'])})" for s in who["sellers"])
        + "</small></p>"
        for crm, who in data["people"].items()
    )
    return (
        f"<section>{''.join(boards)}</section><aside><h2>Recent writes</h2><table>{rows}</table>"
        f"<h2>Names an agent can use</h2>{people}</aside>"
    )


def board_routes(state: SandboxState, journal: Journal) -> list[tuple[str, Any]]:
    no_store = {"Cache-Control": "no-store"}

    async def page(_: Request) -> Response:
        return HTMLResponse(PAGE.replace("<!--board-->", render(await board_data(state, journal))), headers=no_store)

    async def fragment(_: Request) -> Response:
        return HTMLResponse(render(await board_data(state, journal)), headers=no_store)

    async def data(_: Request) -> Response:
        return JSONResponse(await board_data(state, journal), headers=no_store)

    return [("/", page), ("/board.html", fragment), ("/board.json", data)]


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>opportunity-mcp · sandbox board</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body{font:14px/1.4 system-ui,sans-serif;margin:0;background:#f4f5f7;color:#172b4d}
 header{background:#253858;color:#fff;padding:10px 18px;display:flex;gap:16px;align-items:baseline}
 header small{opacity:.75}
 main{padding:12px 18px;display:grid;grid-template-columns:minmax(0,1fr) minmax(0,300px);gap:18px}
 h2{font-size:15px;margin:14px 0 8px}
 aside h3{font-size:12px;margin:10px 0 4px;color:#5e6c84} aside ul{margin:0;padding-left:18px;font-size:12px}
 .board{display:flex;flex-wrap:wrap;gap:10px;padding-bottom:6px}
 .col{background:#ebecf0;border-radius:6px;flex:1 1 120px;max-width:220px;padding:8px;min-width:0}
 .col h3{font-size:12px;text-transform:uppercase;letter-spacing:.04em;margin:0 0 6px;color:#5e6c84}
 .card{background:#fff;border-radius:4px;box-shadow:0 1px 1px #091e4240;padding:7px 8px;margin-bottom:7px}
 .card,aside{overflow-wrap:anywhere}
 .card b{display:block}.card .amt{font-weight:600;color:#006644}.card small{color:#6b778c;display:block}
 .empty{color:#8993a4;font-style:italic;font-size:12px}
 table{width:100%;table-layout:fixed;border-collapse:collapse;font-size:12px;background:#fff}
 td{border-bottom:1px solid #eee;padding:4px;overflow-wrap:anywhere;vertical-align:top}
 td small{display:block;color:#6b778c}
 .done{color:#006644}.failed{color:#bf2600}.unknown{color:#ff8b00}
</style></head>
<body><header><strong>Sandbox board</strong><small>writes land here as agents call the tools · refreshes itself</small>
<small id="stamp"></small></header>
<main id="board"><!--board--></main>
<script>
// The page comes whole from the server; this only swaps in a fresh copy of the same HTML.
async function refresh() {
  try {
    const html = await (await fetch("board.html", {cache: "no-store"})).text();
    document.getElementById("board").innerHTML = html;
    document.getElementById("stamp").textContent = "updated " + new Date().toLocaleTimeString();
  } catch (e) { document.getElementById("stamp").textContent = "server unreachable"; }
}
setInterval(refresh, 1500);
</script></body></html>
"""
