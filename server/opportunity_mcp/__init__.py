"""opportunity-mcp: an MCP server that gives AI agents safe, typed write access to CRM opportunities."""

__version__ = "0.1.0"
