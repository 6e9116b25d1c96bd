# Dockerfile - fstore server image. Two stages on Debian bookworm: build with the project's own
# install script, then a slim runtime with only the shared libraries the binary links.
#   podman build -t fstore:dev .          (or docker build)
#   podman run --network=host fstore:dev serve --listen 127.0.0.1:6566 ...
ARG BASE=debian:bookworm-slim

FROM ${BASE} AS build
WORKDIR /src
COPY scripts/install-deps.sh scripts/install-deps.sh
RUN bash scripts/install-deps.sh
COPY . .
RUN cmake --preset release && cmake --build --preset release -j"$(nproc)" \
    && strip build/release/server/fstore

FROM ${BASE}
RUN apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
       libgrpc29 libprotobuf-c1 liblmdb0 libjansson4 libyaml-0-2 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/fstore --create-home fstore
COPY --from=build /src/build/release/server/fstore /usr/local/bin/fstore
COPY --from=build /src/examples/catalog /etc/fstore/catalog
USER fstore
ENV FSTORE_DATA_DIR=/var/lib/fstore/data \
    FSTORE_CATALOG=/etc/fstore/catalog \
    FSTORE_LISTEN=0.0.0.0:6566
EXPOSE 6566
VOLUME ["/var/lib/fstore"]
ENTRYPOINT ["/usr/local/bin/fstore"]
CMD ["serve"]
