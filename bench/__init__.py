"""The benchmark harness: opportunity-mcp side by side with a floor server, in one run."""
