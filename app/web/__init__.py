"""The pages: the senior's ``/app``, the caregiver's ``/care`` and the operator console ``/ops``.

Server-rendered Jinja2 shells with one plain JavaScript module per page, no build step and
nothing fetched from anywhere but this app (see DESIGN.md, "Browsers and clients"). Texts go
through one gettext catalogue (``app/web/locale``; zh-CN by default, English as the msgids).
"""
