"""`python -m server` is the same as the `opportunity-mcp` command."""

from server.main import main

raise SystemExit(main())
