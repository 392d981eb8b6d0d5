# One image with Vigil's three binaries, for docker-compose.yml:
#   docker build -t vigil-sre/vigil:dev .
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ENV CGO_ENABLED=0
RUN go build -trimpath -ldflags "-s -w" -o /out/vigil-agent ./cmd/vigil-agent \
 && go build -trimpath -o /out/vigil-controller ./cmd/vigil-controller \
 && go build -trimpath -o /out/vigil ./cmd/vigil

FROM alpine:3.20
RUN apk add --no-cache ca-certificates tzdata
COPY --from=build /out/vigil-agent /out/vigil-controller /out/vigil /usr/local/bin/
ENTRYPOINT []
CMD ["vigil", "help"]
