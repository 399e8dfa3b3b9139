# One container: console, REST API and scheduler on port 8080; metadata and warehouse under /data.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    AUTOLOADER_HOST=0.0.0.0 \
    AUTOLOADER_PORT=8080 \
    AUTOLOADER_DATA_DIR=/data

WORKDIR /app
COPY pyproject.toml README.md ./
COPY app ./app
COPY components ./components
COPY core ./core
COPY alembic ./alembic
RUN pip install -e . && useradd --create-home --uid 1000 autoloader && mkdir -p /data && chown autoloader /data

USER autoloader
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/api/v1/health')"
CMD ["autoloader", "serve"]
