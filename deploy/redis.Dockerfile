# Redis for compose.yaml, from Debian's package (the same 7.0 the tests use).
FROM debian:bookworm
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /data && chown redis /data
USER redis
WORKDIR /data
EXPOSE 6379
# The room (its epoch, history and users) survives a restart of this
# container: an append-only file in the volume at /data.
# noeviction: an evicted lease would look like a dead node, an evicted name
# like a free one (docs/operations.md).
CMD ["redis-server", "--bind", "0.0.0.0", "--protected-mode", "no", "--appendonly", "yes", \
     "--dir", "/data", "--save", "", "--maxmemory-policy", "noeviction"]
