# Not built in CI (no Docker engine there): kept small on purpose.
# docker build -t edge-collector . && docker run -p 8080:8080 -v collector-data:/data edge-collector
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /collector ./collector/cmd/collector
RUN mkdir /data

# A static binary needs no libc; distroless/static brings CA certificates and a non-root user.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /collector /usr/local/bin/collector
# A named volume takes this directory's owner: the non-root user can write it.
COPY --from=build --chown=65532:65532 /data /data
VOLUME /data
EXPOSE 8080
USER nonroot:nonroot
# Settings come from COLLECTOR_* variables (docker run -e COLLECTOR_SINK=webhook ...) or from
# flags after the image name; a flag wins over its variable.
ENV COLLECTOR_DB=/data/events.db COLLECTOR_ADDR=:8080
ENTRYPOINT ["/usr/local/bin/collector"]
