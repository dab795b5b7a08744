"""How many messages wait in each Celery queue, as the broker counts them."""

from __future__ import annotations

from celery import Celery


def queue_depths(celery: Celery) -> dict[str, int]:
    """Messages waiting (not yet taken by a worker) in each of the app's queues.

    Asked through kombu's ``queue_declare`` rather than ``LLEN queue``: on Redis, kombu
    keeps a queue as one list per priority step (``default``, ``default\\x06\\x163`` ...),
    and the declare answer sums them. Declaring a queue the workers declare anyway
    changes nothing. Raises kombu's ``OperationalError`` when the broker is down.
    """
    with celery.connection_for_read() as connection:
        channel = connection.default_channel
        return {
            queue.name: queue.bind(channel).queue_declare().message_count
            for queue in celery.conf.task_queues
        }
