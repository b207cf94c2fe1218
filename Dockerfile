# Static expressgateway image: build with the Go toolchain, run from scratch.
#   docker build -t expressgateway . && docker run --network host expressgateway
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /expressgateway .

FROM scratch
COPY --from=build /expressgateway /expressgateway
COPY conf/default.toml /conf/default.toml
WORKDIR /
ENTRYPOINT ["/expressgateway"]
