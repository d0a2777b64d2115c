# The platform image: the master (`python -m master_bot`), the sales bot (`python -m sales_bot`)
# and the operator scripts (`python -m scripts.migrate`, ...). docker-compose.yml builds it:
#
#   docker build -f platform.Dockerfile -t botfleet-platform:latest .
#
# Unlike the client image (./Dockerfile) it carries the PostgreSQL client tools: the master takes
# a final pg_dump of a tenant before deleting it. What goes into the build context is listed in
# platform.Dockerfile.dockerignore (BuildKit reads the ignore file beside the Dockerfile).
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS requirements
COPY pyproject.toml /src/
RUN python3 -c "import tomllib; print('\n'.join(tomllib.load(open('/src/pyproject.toml', 'rb'))['project']['dependencies']))" >/requirements.in

FROM ${BASE_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_ROOT_USER_ACTION=ignore
RUN python3 -m venv /opt/botfleet
WORKDIR /src
COPY constraints.txt ./
COPY --from=requirements /requirements.in ./
RUN --mount=type=secret,id=pip_conf --mount=type=secret,id=pip_cert \
    if [ -s /run/secrets/pip_conf ]; then export PIP_CONFIG_FILE=/run/secrets/pip_conf; fi \
    && /opt/botfleet/bin/pip install --upgrade -c constraints.txt pip setuptools wheel \
    && /opt/botfleet/bin/pip install -c constraints.txt -r requirements.in
COPY . .
RUN --mount=type=secret,id=pip_conf --mount=type=secret,id=pip_cert \
    if [ -s /run/secrets/pip_conf ]; then export PIP_CONFIG_FILE=/run/secrets/pip_conf; fi \
    && /opt/botfleet/bin/pip install --no-deps --no-build-isolation -c constraints.txt . \
    && /opt/botfleet/bin/python -m compileall -q /opt/botfleet/lib

FROM ${BASE_IMAGE}
# pg_dump must be at least the server's version: Debian bookworm ships 15, like postgres:15.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql-client \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 botfleet \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /tmp \
       --shell /usr/sbin/nologin botfleet \
    && mkdir -p /var/lib/botfleet/clients /var/lib/botfleet/backups \
    && chown -R 10001:10001 /var/lib/botfleet
COPY --from=builder /opt/botfleet /opt/botfleet
ENV PATH=/opt/botfleet/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    LANG=C.UTF-8 \
    CLIENTS_DIR=/var/lib/botfleet/clients \
    BACKUPS_DIR=/var/lib/botfleet/backups
WORKDIR /var/lib/botfleet
USER 10001:10001
CMD ["python", "-m", "master_bot"]
# Last, so that a new hash (scripts/docker_engine.sh stack) rebuilds no layer above.
ARG SOURCE_HASH=""
LABEL org.opencontainers.image.title="botfleet-platform" \
      org.opencontainers.image.description="botfleet master, sales bot and operator scripts" \
      botfleet.source-hash="${SOURCE_HASH}"
