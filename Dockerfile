# The chat server as a container: docker build -t chat . && docker run -p 9000:9000 chat
# Options are environment variables: docker run -e CHAT_IDLE_TIMEOUT=60 ...
# Several nodes on one Redis, behind a load balancer: compose.yaml.

# Build: the release preset, and the unit tests must pass.
FROM debian:bookworm AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      cmake ninja-build g++ pkg-config ccache \
      libboost1.81-dev libboost-log1.81-dev libboost-test1.81-dev \
      libboost-program-options1.81-dev libboost-system1.81-dev libboost-json1.81-dev \
      libprotobuf-dev protobuf-compiler libsqlite3-dev libsqlitecpp-dev libhiredis-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt CMakePresets.json ./
COPY proto proto
COPY modules modules
COPY app app
COPY bench bench
COPY test test
COPY www www
ENV CCACHE_DIR=/ccache CMAKE_BUILD_PARALLEL_LEVEL=2
RUN --mount=type=cache,target=/ccache \
    cmake --preset release \
 && cmake --build --preset release --target chat_app chat_unit_tests \
 && ctest --preset release -L unit --output-on-failure

# The page's library: protobuf.js as pinned by package-lock.json.
FROM debian:bookworm AS www
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nodejs npm \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json ./
COPY scripts/www-assets scripts/
# Behind a proxy that re-signs TLS, give npm its certificate authority:
#   docker build --secret id=ca,src=/etc/ssl/certs/ca-certificates.crt .
# (without the secret, node notes the missing file and goes on)
RUN --mount=type=secret,id=ca NODE_EXTRA_CA_CERTS=/run/secrets/ca scripts/www-assets /src/www-assets

# Runtime: the binary, its shared libraries and the www folder; no compiler,
# no headers.
FROM debian:bookworm
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libboost-json1.81.0 libboost-log1.81.0 libboost-program-options1.81.0 libprotobuf32 \
      libsqlite3-0 libhiredis0.14 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin chat \
 && mkdir -p /app/data && chown chat /app/data
COPY --from=build /src/build/release/chat_app /app/chat_app
COPY www /app/www
COPY --from=www /src/www-assets/vendor /app/www/vendor
USER chat
WORKDIR /app
# Logs go to stdout; give a folder (a volume) to also get sys.log:
#   docker run -v chat-logs:/app/logs -e CHAT_LOG_DIR=/app/logs ...
ENV CHAT_LOG_DIR=""
# The kept messages (SQLite): a volume, so that they outlive the container:
#   docker run -v chat-data:/app/data ...
ENV CHAT_HISTORY_DB=/app/data/chat.db
VOLUME /app/data
EXPOSE 9000
# bash's /dev/tcp: no curl in the image. Follows CHAT_PORT if it is set.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${CHAT_PORT:-9000} && printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3 && read -r status <&3 && [[ $status == *' 200 '* ]]"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/app/chat_app"]
