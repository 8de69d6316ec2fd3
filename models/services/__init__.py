"""Use cases: one function is one transaction, combining ``store`` and ``rules``.

Every service locks the rows it writes in one order, so two services never wait on each other
in opposite orders (a deadlock)::

    org -> contact -> thread -> lead -> escalation -> message (or call)

- Locks are row locks taken ``FOR NO KEY UPDATE`` (``models.database.lock``): they order
  writers of a row without blocking the key-share locks PostgreSQL takes when a child row
  (a message, an escalation) is written against its parent.
- A thread is always locked after its contact (``store.threads.lock_thread``), and every write
  to a thread row goes through it first, including the SQL ``UPDATE`` a new message makes.
- An escalation is locked after its thread (``store.escalations.lock_escalation``).
- A booking or a payment request is locked right after its contact (``store.bookings.
  lock_booking``): a visit's message claim then locks its thread, an inbound answer had
  locked the thread first; the contact lock, taken first by both, keeps them apart.
- Two contacts (a merge) are locked lower id first.
- A paced sender's row (``store.pacing.lock_sender``) is locked by a claim after its contact
  and before the touch's thread; nothing else locks it.

Transactions run in one place, ``models.database.transaction``: a deadlock or a serialization
failure that slips past this order is retried there, bounded.
"""
