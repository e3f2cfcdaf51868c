"""Study bundles on the Projects page: export, import and the example study (the note an imported study shows
on every page is `ui.common.study_note`)."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import streamlit as st

from core.bundles.example import load_example
from core.bundles.export import BundleError, export_project
from core.bundles.importer import import_bundle
from db.projects import Project
from ui.common import db, plain


def _file_name(project: Project) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", project.name).strip("_") + ".study.zip"


def export_box(project: Project | None) -> None:
    st.markdown(
        "**Export study bundle** — the project as one file: data, splits, prompts, runs and their call "
        "log, reviews, quality checks and training results. API keys never travel (only the names of "
        "their variables); invites and sign-ins stay here."
    )
    if project is None:
        st.info("Choose a project first.")
        return
    models = st.checkbox("Include trained models (large: each run's model folder)", key="bundle_models")
    if st.button(f"Export study bundle of {project.name!r}", key="bundle_export"):
        try:
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / _file_name(project)
                manifest = export_project(db(), project.id, path, models=models)
                st.session_state["bundle_ready"] = (project.id, path.name, path.read_bytes(), manifest)
        except BundleError as exc:
            st.error(plain(exc))
        except Exception as exc:  # never a traceback on the page
            st.error(f"The bundle could not be written: {plain(type(exc).__name__)}: {plain(exc)}")
    ready = st.session_state.get("bundle_ready")
    if ready and ready[0] == project.id:
        _, name, blob, manifest = ready
        rows = sum(t["rows"] for t in manifest["tables"].values())
        size = f"{len(blob) / 1e6:.1f} MB" if len(blob) >= 100_000 else f"{len(blob) / 1e3:.0f} kB"
        st.success(f"Bundle ready: {rows:,} rows in {len(manifest['tables'])} tables, {size}.")
        st.download_button("Download study bundle", blob, file_name=name, mime="application/zip", key="bundle_dl")


def import_box(switch_to) -> None:
    st.markdown(
        "**Import study bundle** — a bundle becomes a new project (its name made unique); nothing "
        "that is here is changed. A changed, cut-short or newer-version file is refused whole."
    )
    upload = st.file_uploader("Study bundle (.zip)", type=["zip"], key="bundle_upload")
    if st.button("Import study bundle", disabled=upload is None, key="bundle_import"):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "upload.zip"
            path.write_bytes(upload.getvalue())
            _run_import(lambda: import_bundle(db(), path, upload.name), switch_to)


def example_box(switch_to) -> None:
    st.markdown(
        "**Example study** — one real run of the study script on Hallmarks of Cancer (import, baseline, "
        "generation with the embedded model, a scripted review, augmented training, results), to look "
        "around every page without waiting."
    )
    if st.button("Load example study", type="primary", key="bundle_example"):
        _run_import(lambda: load_example(db()), switch_to)


def _run_import(action, switch_to) -> None:
    try:
        done = action()
    except BundleError as exc:
        st.error(plain(exc))
    except Exception as exc:  # never a traceback on the page
        st.error(f"The bundle could not be imported: {plain(type(exc).__name__)}: {plain(exc)}. Nothing was written.")
    else:
        rows = sum(done.rows.values())
        switch_to(done.project_id, f"Imported {done.name!r} ({rows:,} rows); it is now the current project.")
