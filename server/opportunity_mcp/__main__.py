"""`python -m server` is the same as the `opportunity-mcp` command."""

from opportunity_mcp.cli import main

raise SystemExit(main())
