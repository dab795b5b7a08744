# One image for every role (release, web; later worker and beat).
FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 FOLIO_ENV=production
WORKDIR /app
COPY pyproject.toml README.md ./
COPY api ./api
COPY shared ./shared
COPY worker ./worker
COPY migrations ./migrations
COPY gunicorn.conf.py Procfile ./
RUN pip install -e . && useradd --create-home --uid 10001 folio
USER folio
EXPOSE 8000
CMD ["gunicorn", "--config", "gunicorn.conf.py", "api.wsgi:app"]
