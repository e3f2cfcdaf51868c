"""Small Playwright helpers the browser tests share."""

from __future__ import annotations

from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect


def wait_idle(page) -> None:
    """Until Streamlit has finished the current script run."""
    page.wait_for_timeout(300)
    expect(page.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=30_000)


def choose(page, label: str, option: str) -> None:
    """Pick an option of a select box (again if a rerun closed the list before the click)."""
    for _ in range(3):
        wait_idle(page)
        page.get_by_label(label, exact=True).click()
        try:
            page.get_by_role("option", name=option).click(timeout=5_000)
            return
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
    raise AssertionError(f"Could not choose {option!r} in {label!r}")


def fill_grid(page, grid, rows: list[tuple[str, ...]], widths: tuple[int, ...]) -> None:
    """Type rows into an empty `st.data_editor` (a canvas grid) as a user would: add the rows, then click
    each cell and type. `widths` are the columns' pixel widths; each cell is checked against the grid's
    accessibility table (`#glide-cell-<column>-<row>`) and typed again if a click was lost."""
    add = page.locator("[data-testid=stElementToolbarButton]:visible").filter(has=page.get_by_label("Add row")).first
    for r in range(len(rows)):
        for _ in range(4):  # a click on a busy page can be lost: add until the grid has the row
            if grid.locator(f"#glide-cell-1-{r}").count():
                break
            grid.hover()
            add.click()
            page.wait_for_timeout(400)
        else:
            raise AssertionError(f"Could not add row {r + 1} to the grid")
        page.keyboard.press("Escape")
    box = grid.bounding_box()
    header = row_height = 35
    for r, values in enumerate(rows):
        for c, value in enumerate(values):
            if not value:
                continue
            x = box["x"] + 32 + sum(widths[:c]) + widths[c] / 2  # 32: the row-marker column
            y = box["y"] + header + row_height * r + row_height / 2
            cell = grid.locator(f"#glide-cell-{c + 1}-{r}")
            for _ in range(4):
                page.mouse.click(x, y)
                page.wait_for_timeout(200)
                page.mouse.dblclick(x, y)
                page.wait_for_timeout(200)
                page.keyboard.press("ControlOrMeta+A")
                page.keyboard.type(value)
                page.keyboard.press("Enter")
                page.wait_for_timeout(300)
                if cell.inner_text().strip() == value:
                    break
                page.keyboard.press("Escape")
            else:
                raise AssertionError(f"Could not type {value!r} into row {r + 1}, column {c + 1} of the grid")
