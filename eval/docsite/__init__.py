"""The documentation site's generated parts: reference pages rendered from the code (Settings,
the click commands, the app's OpenAPI) and the HTTP examples a real server answers.

``hooks.py`` is the MkDocs hook (mkdocs.yml) that puts them into the pages; nothing here is
typed twice, so the site cannot drift from the code it describes."""
