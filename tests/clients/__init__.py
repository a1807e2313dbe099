"""Scripts that real client libraries run in their own environment (they pin an MCP SDK other than
the server's); the tests start them as separate processes against the server over HTTP."""
