"""`tunesmith ui`: the web UI over a workspace's run folders (see `tunesmith.web.app`).

Modules: `app` (the FastAPI app and its security middleware), `routes_runs` and `routes_data` (pages and JSON
endpoints), `config_form` (the new-run form generated from the config dataclasses), `worker` (UI runs as detached
CLI processes), `progress` (live state read from a run folder), `playground` (base vs tuned chat), `workspace`
(every path a request may name). FastAPI, uvicorn and Jinja2 are imported only by `app` and the routes.
"""
