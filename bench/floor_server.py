"""The floor: the least a Python MCP server can do for this job. mcp 2.x MCPServer, one upsert
tool, one shared httpx2 client, a one-line answer; no validation beyond the signature, no journal.

    python -m bench.floor_server [stdio|http PORT]

Configured like opportunity-mcp: LEADCONNECTOR_BASE_URL, LEADCONNECTOR_TOKEN,
LEADCONNECTOR_LOCATION_ID, LEADCONNECTOR_PIPELINE_ID.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx2
from mcp.server import MCPServer
from mcp.server.mcpserver import Context

BASE = os.environ["LEADCONNECTOR_BASE_URL"]
HEADERS = {"Authorization": f"Bearer {os.environ['LEADCONNECTOR_TOKEN']}", "Version": "2021-07-28"}
LOCATION = os.environ["LEADCONNECTOR_LOCATION_ID"]
PIPELINE = os.environ["LEADCONNECTOR_PIPELINE_ID"]


@asynccontextmanager
async def lifespan(_: MCPServer[httpx2.AsyncClient]) -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient(base_url=BASE, headers=HEADERS, timeout=15) as http:
        yield http


mcp: MCPServer[httpx2.AsyncClient] = MCPServer("floor", lifespan=lifespan, log_level="WARNING")


@mcp.tool()
async def upsert_opportunity(name: str, monetaryValue: float, ctx: Context[httpx2.AsyncClient]) -> str:
    """Create or update a LeadConnector opportunity."""
    http = ctx.request_context.lifespan_context
    body = {
        "pipelineId": PIPELINE,
        "locationId": LOCATION,
        "followers": [],
        "isRemoveAllFollowers": False,
        "followersActionType": "add",
        "name": name,
        "monetaryValue": monetaryValue,
    }
    data = (await http.post("/opportunities/upsert", json=body)).json()
    return f"{'Created' if data['new'] else 'Updated'} opportunity {data['opportunity']['id']}."


if __name__ == "__main__":
    if sys.argv[1:2] == ["http"]:
        mcp.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]), stateless_http=True, json_response=True)
    else:
        mcp.run("stdio")
