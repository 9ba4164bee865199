"""``facetwin studio``: a local web workbench over a project folder (an entry point, floor 5).

Starlette serves server-rendered Jinja2 pages; htmx (vendored under static/, with its server-sent-events
extension) updates them in place; jobs run the stages' own Python APIs in worker processes, queued and
recorded in the project's SQLite database. Nothing below floor 5 imports this package.
"""
