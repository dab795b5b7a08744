"""What the admin operations routes answer: queues, workers and job statistics."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from shared.models import JobStatus
from shared.schemas.fields import TIMESTAMP


class QueueSchema(Schema):
    name = fields.String(
        required=True, metadata={"description": "A Celery queue (see README, Queues)."}
    )
    depth = fields.Integer(
        required=True, metadata={"description": "Messages waiting (not yet taken)."}
    )


class QueuesSchema(Schema):
    queues = fields.List(fields.Nested(QueueSchema), required=True)


class ActiveTaskSchema(Schema):
    task_id = fields.String(required=True)
    task = fields.String(required=True, metadata={"description": "The Celery task name."})
    job_id = fields.String(
        required=True, allow_none=True, metadata={"description": "For a job's task."}
    )


class WorkerSchema(Schema):
    name = fields.String(
        required=True, metadata={"description": "The worker's node name (name@host)."}
    )
    queues = fields.List(
        fields.String(),
        required=True,
        allow_none=True,
        metadata={"description": "Queues it consumes; null when it did not answer in time."},
    )
    active = fields.List(
        fields.Nested(ActiveTaskSchema),
        required=True,
        allow_none=True,
        metadata={"description": "Tasks running now; null when it did not answer in time."},
    )
    last_heartbeat = fields.AwareDateTime(format=TIMESTAMP, required=True)


class WorkersSchema(Schema):
    workers = fields.List(fields.Nested(WorkerSchema), required=True)


class JobStatsSchema(Schema):
    by_status = fields.Dict(
        keys=fields.String(validate=validate.OneOf(JobStatus.ALL)),
        values=fields.Integer(),
        required=True,
    )
    by_type = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    by_type_and_status = fields.Dict(
        keys=fields.String(),
        values=fields.Dict(keys=fields.String(), values=fields.Integer()),
        required=True,
    )
    oldest_queued_age_seconds = fields.Float(
        required=True,
        allow_none=True,
        metadata={"description": "Age of the oldest queued job; null when none is queued."},
    )


queues_schema = QueuesSchema()
workers_schema = WorkersSchema()
job_stats_schema = JobStatsSchema()
