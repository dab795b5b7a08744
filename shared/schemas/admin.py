"""What the admin operations routes answer: queues, workers and job statistics."""

from __future__ import annotations

from marshmallow import Schema, fields

from shared.schemas.job import TIMESTAMP


class QueueSchema(Schema):
    name = fields.String(metadata={"description": "A Celery queue (see README, Queues)."})
    depth = fields.Integer(metadata={"description": "Messages waiting (not yet taken)."})


class QueuesSchema(Schema):
    queues = fields.List(fields.Nested(QueueSchema))


class ActiveTaskSchema(Schema):
    task_id = fields.String()
    task = fields.String(metadata={"description": "The Celery task name."})
    job_id = fields.String(allow_none=True, metadata={"description": "For a job's task."})


class WorkerSchema(Schema):
    name = fields.String(metadata={"description": "The worker's node name (name@host)."})
    queues = fields.List(
        fields.String(),
        allow_none=True,
        metadata={"description": "Queues it consumes; null when it did not answer in time."},
    )
    active = fields.List(
        fields.Nested(ActiveTaskSchema),
        allow_none=True,
        metadata={"description": "Tasks running now; null when it did not answer in time."},
    )
    last_heartbeat = fields.AwareDateTime(format=TIMESTAMP, allow_none=True)


class WorkersSchema(Schema):
    workers = fields.List(fields.Nested(WorkerSchema))


class JobStatsSchema(Schema):
    by_status = fields.Dict(keys=fields.String(), values=fields.Integer())
    by_type = fields.Dict(keys=fields.String(), values=fields.Integer())
    by_type_and_status = fields.Dict(
        keys=fields.String(), values=fields.Dict(keys=fields.String(), values=fields.Integer())
    )
    oldest_queued_age_seconds = fields.Float(
        allow_none=True,
        metadata={"description": "Age of the oldest queued job; null when none is queued."},
    )


queues_schema = QueuesSchema()
workers_schema = WorkersSchema()
job_stats_schema = JobStatsSchema()
