# Dockerfile - fstore server image. Two stages on Debian bookworm: build with the project's own
# install script (its build packages only), then a slim runtime with only the shared libraries the
# binary links, and Debian's nats-server (the replicated Kubernetes overlay runs its NATS
# StatefulSet from this same image, so the log's version is the one fstore is tested with).
#   podman build -t fstore:0.1.0 .       (or docker build; without a registry for the base image,
#                                          `MAKE_BASE=1 bash scripts/container-smoke.sh` builds one
#                                          with debootstrap, builds this, and checks it)
#   podman run --rm --network=host --ulimit nofile=20000:20000 --ulimit nproc=4096:4096 \
#     -e FSTORE_LISTEN=127.0.0.1:6566 fstore:0.1.0 serve
# No VOLUME: the data directory is whatever the orchestrator mounts at /var/lib/fstore (a
# Kubernetes PVC, `podman run -v NAME:/var/lib/fstore`); an image VOLUME would leave an anonymous
# volume behind every `podman run`. No HEALTHCHECK: probes belong to the orchestrator (gRPC
# health on 6566, README "Deployment"). fstore is PID 1 and handles SIGTERM/SIGINT/SIGHUP itself.
# Build args: BASE (the Debian bookworm base image), BUILD_JOBS (compile jobs; default: all CPUs).
ARG BASE=debian:bookworm-slim

FROM ${BASE} AS build
WORKDIR /src
COPY scripts/install-deps.sh scripts/install-deps.sh
RUN bash scripts/install-deps.sh --build-only && rm -rf /var/lib/apt/lists/*
COPY . .
ARG BUILD_JOBS=
# rm -rf build: .dockerignore keeps host build trees out of the context; should one slip in, its
# CMakeCache.txt names another source path and cmake would refuse to configure over it.
# --target fstore: the image ships only the server, not fstore-bench or the Python stubs.
RUN rm -rf build \
    && cmake --preset release \
    && cmake --build --preset release --target fstore -j"${BUILD_JOBS:-$(nproc)}" \
    && strip build/release/fstore

FROM ${BASE}
RUN apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
       libgrpc29 libprotobuf-c1 liblmdb0 libjansson4 libyaml-0-2 libnats3.4 libmicrohttpd12 libgnutls30 libpq5 libxxhash0 \
       ca-certificates nats-server \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 fstore \
    && useradd --system --no-log-init --uid 10001 --gid 10001 --home-dir /var/lib/fstore \
       --shell /usr/sbin/nologin fstore \
    && install -d -o fstore -g fstore -m 0755 /var/lib/fstore /var/lib/fstore/data
COPY --from=build /src/build/release/fstore /usr/local/bin/fstore
COPY --from=build /src/deploy/kubernetes/base/catalog /etc/fstore/catalog
# Fail the build, not the first start, if the runtime stage lacks a library the binary links.
RUN missing="$(ldd /usr/local/bin/fstore | grep 'not found' || true)"; \
    if [ -n "$missing" ]; then echo "fstore: missing shared libraries:" >&2; \
      echo "$missing" >&2; exit 1; fi; \
    /usr/local/bin/fstore --version
USER 10001:10001
ENV FSTORE_DATA_DIR=/var/lib/fstore/data \
    FSTORE_CATALOG=/etc/fstore/catalog \
    FSTORE_LISTEN=0.0.0.0:6566
# gRPC on 6566; HTTP (Feast HTTP, SageMaker's /ping and /invocations, TF Serving REST,
# /metrics) on 8080, or on the port SageMaker gives in SAGEMAKER_BIND_TO_PORT.
EXPOSE 6566 8080
LABEL com.amazonaws.sagemaker.capabilities.accept-bind-to-port=true
ENTRYPOINT ["/usr/local/bin/fstore"]
CMD ["serve"]
