"""Clients for the upstream CRMs, one module per family behind one description (`base.Family`,
registered in `families`). This package knows nothing of MCP, of the tools' argument models or of how
settings are loaded: a client takes an `Account` and its own small request values, and returns a
`WriteResult` or raises a `CrmError`."""
