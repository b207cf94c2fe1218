# expressgateway image: built with the Go toolchain, run from scratch as a
# non-root user, with a CA bundle (TLS to public-CA backends) and a
# writable /tmp.
#
#   docker build --build-arg VERSION=$(git describe --always --dirty) -t expressgateway .
#   docker run -e EG_ADMIN__API_TOKEN_HASH=... -p 8080:8080 -p 9901:9901 expressgateway
#
# conf/container.toml says how to make the token hash. The user (65532) is
# not root: to bind a port below 1024 give the container
# --sysctl net.ipv4.ip_unprivileged_port_start=0 (or that port), or grant
# CAP_NET_BIND_SERVICE as an ambient capability as the systemd unit does.
# The root filesystem can stay read-only (--read-only --tmpfs /tmp): a file
# the gateway creates, such as a QUIC retry_secret_path, belongs on a
# volume the user can write, so that it outlives the container.

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=0.1.0-dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /rootfs/expressgateway .
# The final image's tree, modes set here (COPY keeps them): /tmp
# world-writable and sticky, the CA bundle of the build image, the config.
RUN install -d -m 1777 /rootfs/tmp && \
    install -D -m 0444 /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/ca-certificates.crt && \
    install -D -m 0444 conf/container.toml /rootfs/etc/expressgateway/expressgateway.toml

FROM scratch
COPY --from=build /rootfs/ /
USER 65532:65532
WORKDIR /
EXPOSE 8080/tcp 9901/tcp
HEALTHCHECK --interval=10s --timeout=5s --start-period=5s --retries=3 \
  CMD ["/expressgateway", "-healthcheck", "http://127.0.0.1:9901/livez"]
ENTRYPOINT ["/expressgateway"]
CMD ["/etc/expressgateway/expressgateway.toml"]
