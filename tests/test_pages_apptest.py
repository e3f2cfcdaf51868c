"""Every page in the app's navigation opens without an exception and shows a title, for each default project."""

from __future__ import annotations

import re
from pathlib import Path

from streamlit.testing.v1 import AppTest

from db import connect
from db.projects import list_projects

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "app.py"


def navigation_pages() -> list[str]:
    """The page files app.py puts in st.navigation, in order."""
    pages = re.findall(r"st\.Page\(\s*[\"']([^\"']+\.py)[\"']", APP.read_text())
    assert pages, "app.py lists no pages"
    return pages


def test_navigation_lists_existing_page_files():
    for page in navigation_pages():
        assert (ROOT / page).is_file(), page


def test_every_page_opens_with_a_title():
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.run()  # the first run migrates and seeds the temporary database
    assert not at.exception, [e.message for e in at.exception]
    projects = list_projects(connect())  # the test's temporary database (STUDIO_DB)
    assert len(projects) >= 2  # the two default projects
    failures = []
    for project in projects:
        at.session_state["project_id"] = project["id"]
        for page in navigation_pages():
            at.switch_page(page).run(timeout=120)
            if at.exception:
                failures.append(f"{page} ({project['name']}): {at.exception[0].message}")
            elif not at.title or not at.title[0].value.strip():
                failures.append(f"{page} ({project['name']}): no title")
    assert not failures, "\n".join(failures)
