# The webhook reverse proxy (docker-compose.yml, service `caddy`): Debian's caddy package.
# Until the master's first load (master_bot/ingress.py), the only config is the admin API on
# the compose network; with --resume, the last loaded routes survive a restart.
ARG DEBIAN_IMAGE=debian:bookworm-slim
FROM ${DEBIAN_IMAGE}
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends caddy ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && printf '{\n\tadmin 0.0.0.0:2019\n}\n' > /etc/caddy/Caddyfile
EXPOSE 80 443
CMD ["caddy", "run", "--resume", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile"]
