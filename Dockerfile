# One image for every role: release (migrations), web, worker and beat differ only in
# their command (docker-compose.yml runs the Procfile's lines).
#
# Build stage: dependencies into a virtualenv, built once per change of pyproject.toml.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /app
COPY pyproject.toml README.md ./
# Dependencies only (an empty package tree is enough to resolve them): code changes
# reuse this layer.
RUN mkdir api shared worker && pip install . && pip uninstall --yes folio
COPY api ./api
COPY shared ./shared
COPY worker ./worker
# Editable: the code stays in /app, beside migrations/ and gunicorn.conf.py that it uses.
RUN pip install --no-deps --editable .

# Runtime stage: the virtualenv and the code, no compilers, no pip cache, not root.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PATH=/opt/venv/bin:$PATH \
    FOLIO_ENV=production PORT=8000
RUN useradd --create-home --uid 10001 --user-group folio
WORKDIR /app
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
COPY migrations ./migrations
COPY gunicorn.conf.py Procfile ./
USER folio
EXPOSE 8000
CMD ["gunicorn", "--config", "gunicorn.conf.py", "api.wsgi:app"]
