# One container: console, REST API and scheduler on port 8080; metadata, warehouse and landing folder under /data.
#
#   docker build -t autoloader .                                  # embedded engine (default)
#   docker build -t autoloader:spark --build-arg VARIANT=spark .  # + PySpark client, Delta jars and a Java 17 runtime
#   docker run -p 8080:8080 -v autoloader-data:/data autoloader
#
# BASE_IMAGE is any Debian bookworm image with Python 3.11 and venv (tests/integration/test_container_image.py builds
# one from Debian's packages with mmdebstrap, because no registry of base images is reachable where it runs).
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}
ARG VARIANT=embedded
# Behind a TLS-inspecting proxy: mount its CA bundle at build time and name it here (pip reads PIP_CERT).
ARG PIP_CERT

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/autoloader/bin:$PATH \
    AUTOLOADER_HOST=0.0.0.0 \
    AUTOLOADER_PORT=8080 \
    AUTOLOADER_DATA_DIR=/data

RUN set -eu; \
    if [ "$VARIANT" = spark ]; then \
        apt-get update; \
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends openjdk-17-jre-headless; \
        rm -rf /var/lib/apt/lists/*; \
    elif [ "$VARIANT" != embedded ]; then \
        echo "VARIANT must be embedded or spark, not '$VARIANT'" >&2; exit 1; \
    fi; \
    useradd --create-home --uid 1000 autoloader; \
    mkdir -p /data/landing; \
    chown -R autoloader /data

WORKDIR /app
# Dependencies first, in a layer of their own, so a change to the code rebuilds in seconds.
COPY pyproject.toml ./
RUN set -eu; \
    python3 -m venv /opt/autoloader; \
    python3 -c "import tomllib, sys; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
deps = p['dependencies'] + (p['optional-dependencies']['spark'] if sys.argv[1] == 'spark' else []); \
open('/tmp/requirements.txt', 'w').write(chr(10).join(deps))" "$VARIANT"; \
    pip install --no-cache-dir -r /tmp/requirements.txt; \
    rm /tmp/requirements.txt
# The code in one layer (.dockerignore lists what goes in): every layer is a full copy under podman's vfs driver.
COPY . ./
RUN pip install --no-cache-dir --no-deps -e /app && python3 -m compileall -q /app

USER autoloader
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s CMD python3 -c "import os, urllib.request as r; \
r.urlopen('http://127.0.0.1:%s/api/v1/health' % os.environ.get('AUTOLOADER_PORT', '8080'), timeout=4)"
CMD ["autoloader", "serve"]
