"""Background jobs: the supervisor process the app starts (`worker.ensure_worker`), which claims queued
jobs from the `jobs` table and runs each in its own process (`worker.run_job`), heartbeats, obeys
cancel flags and recovers jobs whose process died. `processes` has the liveness check it shares.
"""
