# fastformerd container: a build stage with the -dev packages, and a slim
# runtime stage with only the shared libraries, the binaries, the config and
# the default models. Build: docker build -t fastformerd .
# Run:   docker run --rm -p 8080:8080 fastformerd
# The health check hits /healthz, which answers as soon as the daemon listens
# (before the models are loaded), so no start period is needed.

FROM debian:bookworm-slim AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        gcc libc6-dev make pkg-config \
        libopenblas-dev libjansson-dev libyaml-dev libmicrohttpd-dev libsystemd-dev libutf8proc-dev \
        libgnutls28-dev libsqlite3-dev libpq-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Makefile ./
COPY model/ model/
COPY server/ server/
COPY cli/ cli/
COPY conf/ conf/
COPY README.md ./
COPY deploy/ deploy/
COPY models/ models/
RUN make -j"$(nproc)" all \
    && make install DESTDIR=/out PREFIX=/usr SYSCONFDIR=/etc \
    && sed -i 's|^\(  *listen:\).*|\1 "0.0.0.0:8080"|' /out/etc/fastformerd/fastformerd.yaml

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        libopenblas0-pthread libjansson4 libyaml-0-2 libmicrohttpd12 libsystemd0 libutf8proc2 \
        libgnutls30 libsqlite3-0 libpq5 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin fastformerd \
    && install -d -o 10001 -g 10001 -m 0750 /var/lib/fastformerd
COPY --from=build /out/usr/bin/ /usr/bin/
COPY --from=build /out/usr/share/fastformerd/ /usr/share/fastformerd/
COPY --from=build /out/etc/fastformerd/ /etc/fastformerd/
ENV OPENBLAS_NUM_THREADS=2
# The recommenders' news stores (SQLite, one file per model): mount a volume
# here to keep the catalog across containers (docker run -v news:/var/lib/fastformerd).
VOLUME /var/lib/fastformerd
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
    CMD ["/usr/bin/fastformerd", "--healthcheck", "--config", "/etc/fastformerd/fastformerd.yaml"]
ENTRYPOINT ["/usr/bin/fastformerd"]
CMD ["--config", "/etc/fastformerd/fastformerd.yaml", "--state-dir", "/var/lib/fastformerd"]
