"""What a person watching wants to see at once, fanned out to whoever listens (the web page's streams).

    events = Events()
    stop = events.subscribe(lambda kind, data: ...)   # called in the reactor thread, for each event
    events.publish("transaction", terminal="1", id=42)
    stop()

Kinds published (``data`` is JSON-ready):

- ``transaction``: ``terminal``, ``id`` — a journal row was written
- ``pending``: ``pending`` — the list of transactions waiting for a decision changed (the whole list)
- ``decided``: the entry of ``GET /pending`` plus ``outcome`` and ``by``
- ``settings``: ``terminal`` — its settings changed
- ``queue``: ``terminal`` — its queue of next outcomes changed
"""

from __future__ import annotations

import logging
from collections.abc import Callable

log = logging.getLogger("caisse_ap_ip.events")
Subscriber = Callable[[str, dict], None]


class Events:
    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Call ``subscriber(kind, data)`` for every event from now on; returns the function that stops it."""
        self._subscribers.append(subscriber)
        return lambda: self._subscribers.remove(subscriber) if subscriber in self._subscribers else None

    def publish(self, kind: str, **data: object) -> None:
        for subscriber in list(self._subscribers):
            try:
                subscriber(kind, data)
            except Exception:  # one broken listener must not stop the terminal or the others
                log.exception("event listener failed on %s", kind)
