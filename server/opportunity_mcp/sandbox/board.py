"""The sandbox board: `GET /` beside the MCP endpoint when serving HTTP with --sandbox. The sandbox
pipelines as boards (one column per stage, a card per opportunity) and the journal's recent writes,
refreshed every second and a half, so a person building a bot flow watches the deals land. Plain
HTML, CSS and a few lines of script; `GET /board.json` is the data it draws."""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from opportunity_mcp.journal import Journal
from opportunity_mcp.sandbox.state import SandboxState


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

    pipelines = [
        {
            "title": "Plazbot / Wabotify · workspace ws-sandbox",
            "columns": columns(
                seed.plazbot_stages,
                plazbot,
                "stageId",
                amount="amount",
                assignee="assignedAgentId",
                when="updatedDate",
                contact="contactId",
            ),
        },
    ]
    for pipeline_id, stages in seed.lc_pipelines.items():
        in_pipeline = [o for o in leadconnector if o.get("pipelineId") == pipeline_id]
        pipelines.append(
            {
                "title": f"LeadConnector · pipeline {pipeline_id}",
                "columns": columns(
                    stages,
                    in_pipeline,
                    "pipelineStageId",
                    amount="monetaryValue",
                    assignee="assignedTo",
                    when="updatedAt",
                    contact="contactId",
                ),
            }
        )
    writes = [
        {
            "at": time.strftime("%H:%M:%S", time.localtime(row.at)),
            "tool": row.tool,
            "account": row.account,
            "outcome": row.outcome,
            "code": row.code,
            "id": row.opportunity_id,
            "ms": row.latency_ms,
        }
        for row in await journal.recent(15)
    ]
    return {"pipelines": pipelines, "writes": writes}


def board_routes(state: SandboxState, journal: Journal) -> list[tuple[str, Any]]:
    async def page(_: Request) -> Response:
        return HTMLResponse(PAGE)

    async def data(_: Request) -> Response:
        return JSONResponse(await board_data(state, journal), headers={"Cache-Control": "no-store"})

    return [("/", page), ("/board.json", data)]


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>opportunity-mcp · sandbox board</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body{font:14px/1.4 system-ui,sans-serif;margin:0;background:#f4f5f7;color:#172b4d}
 header{background:#253858;color:#fff;padding:10px 18px;display:flex;gap:16px;align-items:baseline}
 header small{opacity:.75}
 main{padding:12px 18px;display:grid;grid-template-columns:minmax(0,1fr) 340px;gap:18px}
 h2{font-size:15px;margin:14px 0 8px}
 .board{display:flex;gap:10px;overflow-x:auto;padding-bottom:6px}
 .col{background:#ebecf0;border-radius:6px;flex:1 1 0;min-width:150px;max-width:220px;padding:8px}
 .col h3{font-size:12px;text-transform:uppercase;letter-spacing:.04em;margin:0 0 6px;color:#5e6c84}
 .card{background:#fff;border-radius:4px;box-shadow:0 1px 1px #091e4240;padding:7px 8px;margin-bottom:7px}
 .card b{display:block}.card .amt{font-weight:600;color:#006644}.card small{color:#6b778c;display:block}
 .empty{color:#8993a4;font-style:italic;font-size:12px}
 table{width:100%;border-collapse:collapse;font-size:12px;background:#fff}
 td{border-bottom:1px solid #eee;padding:4px}.done{color:#006644}.failed{color:#bf2600}.unknown{color:#ff8b00}
</style></head>
<body><header><strong>Sandbox board</strong><small>writes land here as agents call the tools · refreshes itself</small>
<small id="stamp"></small></header>
<main><section id="pipelines"></section><aside><h2>Recent writes</h2><table id="writes"></table></aside></main>
<script>
const esc = s => String(s ?? "").replace(/[&<>"]/g, c => ({"&":"&amp;","<":"&lt;",">":"&gt;",'"':"&quot;"}[c]));
const money = v => v == null ? "" : Number(v).toLocaleString(undefined, {minimumFractionDigits: 2});
function card(c) {
  return `<div class="card" data-id="${esc(c.id)}"><b>${esc(c.name)}</b>` +
    `<span class="amt">${money(c.amount)}</span>` +
    `<small>${esc(c.code || c.id)}${c.status ? " · " + esc(c.status) : ""}</small>` +
    (c.contact ? `<small>contact ${esc(c.contact)}</small>` : "") +
    (c.assignee ? `<small>owner ${esc(c.assignee)}</small>` : "") +
    `<small>${esc((c.when || "").replace("T", " ").slice(0, 19))}</small></div>`;
}
async function refresh() {
  try {
    const data = await (await fetch("board.json", {cache: "no-store"})).json();
    document.getElementById("pipelines").innerHTML = data.pipelines.map(p =>
      `<h2>${esc(p.title)}</h2><div class="board">` + p.columns.map(c =>
        `<div class="col"><h3>${esc(c.name)} (${c.cards.length})</h3>` +
        (c.cards.map(card).join("") || '<div class="empty">no deals</div>') + "</div>").join("") + "</div>"
    ).join("");
    document.getElementById("writes").innerHTML = data.writes.map(w =>
      `<tr><td>${esc(w.at)}</td><td>${esc(w.tool)}</td><td class="${esc(w.outcome)}">${esc(w.outcome)}</td>` +
      `<td>${esc(w.code || w.id || "")}</td><td>${w.ms ?? ""} ms</td></tr>`).join("") ||
      '<tr><td class="empty">no writes yet</td></tr>';
    document.getElementById("stamp").textContent = "updated " + new Date().toLocaleTimeString();
  } catch (e) { document.getElementById("stamp").textContent = "server unreachable"; }
}
refresh(); setInterval(refresh, 1500);
</script></body></html>
"""
