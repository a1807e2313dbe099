"""Clients for the upstream CRMs. This package knows nothing of MCP: it turns validated arguments
into HTTP requests and HTTP answers into `WriteResult`s or `CrmError`s."""
