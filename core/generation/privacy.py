"""Real observations leaving the machine: few-shot examples come from the project's real train split, so a
run or preview with examples sends real (possibly clinical) text to the connection's server. When that server
is not on this machine, the user is told so before the first call and acknowledges it once per connection.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlparse

from core.generation import connections as conns
from core.generation.prices import is_local
from db.generation import prices as price_q
from db.generation import runs as run_q


@dataclass(frozen=True)
class Exposure:
    connection_id: int
    connection: str
    host: str

    @property
    def message(self) -> str:
        return (
            f"Real observations may be sent to {self.host}: few-shot examples are drawn from this project's real "
            f"train split and the connection {self.connection!r} is not on this machine."
        )


def exposures(db, project_id: int, connection_ids, n_examples: int, label_codes=None) -> list[Exposure]:
    """Remote connections that would receive real observations and were not acknowledged yet."""
    if n_examples <= 0 or not any(run_q.train_texts_for_label(db, project_id, c) for c in (label_codes or [])):
        return []
    found = []
    for cid in dict.fromkeys(int(c) for c in connection_ids):
        conn = conns.get_connection(db, cid)
        if is_local(conn) or price_q.privacy_acknowledged(db, cid):
            continue
        found.append(Exposure(cid, conn.name, urlparse(conn.base_url).hostname or conn.base_url))
    return found


def acknowledge(db, connection_id: int) -> None:
    """The user has read that real observations may go to this connection's server (asked once)."""
    price_q.acknowledge_privacy(db, connection_id)


class NotAcknowledged(ValueError):
    """Real observations would go to a remote server the user has not acknowledged."""


def refuse_unacknowledged(db, project_id: int, connection_ids, n_examples: int, label_codes) -> None:
    found = exposures(db, project_id, connection_ids, n_examples, label_codes)
    if found:
        raise NotAcknowledged(" ".join(e.message for e in found) + " Acknowledge it before the first call.")
