"""Who may use the app when it is shared beyond this machine: the researcher's password, reviewers' invite
links, the limit on failed attempts, and the `review-server` launcher. Start with `gate.py`."""
