"""Study bundles: a whole project as one file, and back as a new project on another machine.

Start with `spec.py` (which tables travel, how their ids point at each other, which tables stay and why),
then `export.py` (project -> zip of one SQLite file and a manifest), `check.py` (what is verified before
anything is written) and `importer.py` (the bundle -> a new project, every id remapped, in one transaction).
`example.py` loads the example study that ships in assets/example/.
"""
