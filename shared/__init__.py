"""Code used by both processes: settings, database, models, schemas, services, security."""
