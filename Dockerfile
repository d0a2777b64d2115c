# The client-bot image: one container per tenant runs `python -m client_bot`.
#
#   docker build -t botfleet-client:latest .                       # on python:3.11-slim
#   docker build --build-arg BASE_IMAGE=botfleet-base:bookworm .   # any base with python3 >= 3.11
#
# BASE_IMAGE needs python3 with venv, CA certificates and tzdata. Where no registry is reachable,
# scripts/docker_engine.sh makes one with debootstrap and builds this file with BuildKit, passing
# the machine's pip settings as secrets (pip_conf: a pip.conf; pip_cert: a CA bundle). Both are
# optional and never land in a layer.
ARG BASE_IMAGE=python:3.11-slim

# The dependency list alone, so that edits elsewhere in pyproject.toml keep the dependency layer.
FROM ${BASE_IMAGE} AS requirements
COPY pyproject.toml /src/
RUN python3 -c "import tomllib; print('\n'.join(tomllib.load(open('/src/pyproject.toml', 'rb'))['project']['dependencies']))" >/requirements.in

FROM ${BASE_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_ROOT_USER_ACTION=ignore
RUN python3 -m venv /opt/botfleet
WORKDIR /src
# Dependencies first (this layer survives code changes), then the project itself.
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
# A fixed non-root uid/gid; the deploy backend refuses images that would run as root.
RUN groupadd --gid 10001 botfleet \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /tmp \
       --shell /usr/sbin/nologin botfleet
COPY --from=builder /opt/botfleet /opt/botfleet
ENV PATH=/opt/botfleet/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    LANG=C.UTF-8
WORKDIR /tmp
USER 10001:10001
CMD ["python", "-m", "client_bot"]
# Last, so that a new hash (scripts/docker_engine.sh) rebuilds no layer above.
ARG SOURCE_HASH=""
LABEL org.opencontainers.image.title="botfleet-client" \
      org.opencontainers.image.description="botfleet client bot (python -m client_bot)" \
      botfleet.source-hash="${SOURCE_HASH}"
