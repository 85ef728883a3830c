# The image the Helm chart runs: a release build on a distroless, non-root base.
# scripts/dockerfile-check.sh (run by CI) builds from exactly what this file copies.
FROM rust:1.95-bookworm AS build
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

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/trailkeeper /usr/local/bin/trailkeeper
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/trailkeeper"]
CMD ["run"]
