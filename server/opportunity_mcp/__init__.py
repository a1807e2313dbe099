"""opportunity-mcp: an MCP server that gives AI agents safe, typed write access to CRM opportunities."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("opportunity-mcp")  # one version: pyproject.toml's, as installed
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+source"
