# The image the Helm chart runs: a release build on a distroless, non-root base.
# scripts/dockerfile-check.sh (run by CI) builds from exactly what this file copies.
# Base images pinned by digest (a moving tag would change what ships without a change here). To
# move on: `docker buildx imagetools inspect rust:1.95-bookworm` and replace the digest.
FROM rust:1.95-bookworm@sha256:6258907abe69656e41cd992e0b705cdcfabcbbe3db374f92ed2d47121282d4a1 AS build
WORKDIR /src
# Dependencies first, in a layer of their own, so that a source change does not rebuild the AWS
# SDK: the manifest with stub sources (benches too: cargo refuses a manifest whose declared bench
# file is missing).
COPY Cargo.toml Cargo.lock ./
COPY benches ./benches
RUN mkdir -p src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
 && cargo build --release --locked --bin trailkeeper \
 && rm -rf src
COPY src ./src
# COPY keeps the files' times, which may be older than the stub build: make cargo see them as new.
RUN touch src/main.rs src/lib.rs && cargo build --release --locked --bin trailkeeper

FROM gcr.io/distroless/cc-debian12:nonroot@sha256:9dac0a79194e45a7da0158a9c6da57b217585af0786db3845d1f0ec1a0dd182f
COPY --from=build /src/target/release/trailkeeper /usr/local/bin/trailkeeper
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/trailkeeper"]
CMD ["run"]
