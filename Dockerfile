# orchat in a container: a multi-stage build (cgo for SQLite), run as a
# non-root user with the ledger on a volume.
#   docker build -t orchat .
#   docker run -d --name orchat -v orchat-data:/data \
#     -e OPENROUTER_API_KEY -e DISCORD_BOT_TOKEN -p 127.0.0.1:9464:9464 orchat

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=1 go build -trimpath -ldflags="-s -w" -o /out/orchat ./cmd/orchat

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home /data --shell /usr/sbin/nologin orchat \
 && install -d -o orchat -g orchat -m 0750 /data
COPY --from=build /out/orchat /usr/local/bin/orchat
USER orchat
WORKDIR /data
VOLUME ["/data"]
# /healthz, /readyz and /metrics: listen on all interfaces inside the
# container; publish the port to the host's loopback only (see above).
EXPOSE 9464
# SIGTERM lets answers in flight finish (shutdown_timeout, default 20 s):
# give `docker stop` a little longer with --time 30.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/orchat"]
CMD ["run", "--db", "/data/orchat.db", "--http", "0.0.0.0:9464"]
