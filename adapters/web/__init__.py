"""The web view (``uok ui``) and the HTML report (``uok report``).

Needs the ``ui`` extra (Starlette, uvicorn, sse-starlette, Jinja2); nothing
in this package is imported by the base CLI until one of those commands
runs. Templates and static files ship inside it (``templates/``,
``static/``). See docs/ui.md.
"""
