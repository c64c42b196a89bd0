"""``changed_rows_only``: import only the rows new or changed since the last import Marketo
confirmed.

``state``       :class:`ChangeState`: the confirmed state of an import target in ``state_path`` (the
                pointer ``latest.json``, the state file of key hashes and fingerprints), read,
                checked and written
``lock``        :class:`StateLock`: ``lock.json``, held by one run at a time for a lease it renews
``lock_files``  where ``lock.json`` lives: a local flock and hard link, S3 conditional writes
``comparison``  :class:`ChangedRows`: what the option adds to an import (the lock taken and
                renewed, the previous state to compare with, the next one built and written once
                Marketo confirmed)

The rows are compared with the previous state as pre-flight writes the ledger
(:mod:`~marketo_provider.sources.ledger`) and the unchanged ones left out of the parts
(:mod:`~marketo_provider.sources.dropping`); the state's folder is a
:class:`~marketo_provider.storage.StateLocation`.
"""

from marketo_provider.importing.changes.comparison import ChangedRows, renew_lease
from marketo_provider.importing.changes.lock import StateLockedError
from marketo_provider.storage import StateDamagedError

__all__ = [
    "ChangedRows",
    "StateDamagedError",
    "StateLockedError",
    "renew_lease",
]
