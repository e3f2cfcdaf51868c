"""What the pages share that is not a page: the database handle and project picker (`common`), the
keyboard bindings (`review_keys`) and the Review page's three views (`review_*`).
"""
