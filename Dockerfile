# qunshao: multi-stage build of a static binary (no cgo: the embedded SQLite
# is pure Go) into a distroless image that runs as a non-root user.
#
#   docker build -t qunshao .
#   docker run -v qunshao-data:/data qunshao                      # serve
#
# In a container the OneBot reverse-WebSocket listener must listen on every
# interface, which then requires an access token:
#   docker run -v qunshao-data:/data -p 8095:8095 \
#     -e QUNSHAO_BOTS_ONEBOT_REVERSE_WS_LISTEN=0.0.0.0:8095 \
#     -e QUNSHAO_BOTS_ONEBOT_REVERSE_WS_ACCESS_TOKEN=... qunshao
#   docker run -v qunshao-data:/data qunshao demo --db /data/demo.db

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/qunshao ./cmd/qunshao \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/qunshao /usr/local/bin/qunshao
COPY --from=build --chown=65532:65532 /out/data /data
WORKDIR /data
VOLUME ["/data"]
ENV QUNSHAO_STORAGE_DSN=/data/qunshao.db
EXPOSE 8095
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/qunshao"]
CMD ["serve"]
