# Dropgate: one static binary in an empty image.
#
# Build:  docker build -t dropgate .
# Run:    docker run -p 8080:8080 -v dropgate-data:/data \
#           -e DROPGATE_PUBLIC_URL=https://downloads.example.com dropgate
#
# The build stage runs the same `cargo xtask build` as the README, so the image holds the
# exact binary a seller would copy to a server by hand.

FROM rust:1-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools nodejs npm \
 && rm -rf /var/lib/apt/lists/*
RUN rustup target add wasm32-unknown-unknown x86_64-unknown-linux-musl
WORKDIR /src
COPY . .
RUN cargo xtask build \
 && mkdir -p /out/data \
 && cp target/dropgate /out/dropgate

FROM scratch
COPY --from=build /out/dropgate /dropgate
# The tz database: the store's time zone (Settings) is read from it; without it only UTC.
COPY --from=build /usr/share/zoneinfo /usr/share/zoneinfo
# An empty, writable /data owned by the unprivileged user below.
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
VOLUME ["/data"]
EXPOSE 8080
ENV DROPGATE_DATA_DIR=/data \
    DROPGATE_BIND=0.0.0.0:8080
HEALTHCHECK NONE
ENTRYPOINT ["/dropgate"]
CMD ["serve"]
