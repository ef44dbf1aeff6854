"""The web console for agency staff, tenant admins and operators: server-rendered pages beside the API.

`pages.py` is the page table and its wrapper (sessions, roles, CSRF, errors),
`render.py` the templates, message catalogue and formatting, `assets.py`
the static files, `routes/` the pages by area.
"""
