# The image the Helm chart runs: a static-ish release build on a distroless, non-root base.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
RUN cargo build --release --locked --bin trailkeeper

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/trailkeeper /usr/local/bin/trailkeeper
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/trailkeeper"]
CMD ["run"]
