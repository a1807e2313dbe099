"""Every default the server runs with, in one place: the settings (`config`) take them, and so do the
parts that can be built without settings (a call's policy, the tools' state, the connection limits)."""

HTTP_TIMEOUT = 15.0  # seconds per upstream request
CALL_BUDGET = 20.0  # seconds a whole tool call may take, retries and waits included
DUPLICATE_WINDOW = 600.0  # seconds an identical create counts as a duplicate
LOOKUP_TTL = 300.0  # seconds a list of stages, pipelines, sellers or lost reasons is reused
RATE_LIMIT = 100  # LeadConnector requests per location …
RATE_WINDOW = 10.0  # … per this many seconds
SETTLE = 2.0  # seconds a create whose answer was lost may still land at the CRM before it counts as absent
RECONCILE_EVERY = 60.0  # seconds between a running server's looks at its unknown writes (0: never)
PLAZBOT_PAGES = 10  # pages of a Plazbot deal list (about 20 deals each) one call may read
HEAD_TIMEOUT = 10.0  # seconds an HTTP request's head may take to arrive
BODY_TIMEOUT = 30.0  # seconds its body may take
KEEP_ALIVE = 5.0  # seconds an idle kept-alive connection stays open
MAX_CONNECTIONS = 512  # open HTTP connections at most
