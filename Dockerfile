# The millrace-controller image: built with the same steps as CI (scripts/bootstrap, then CMake with
# warnings as errors), run as a non-root user on a slim Debian. The binary links everything but glibc
# statically (cmake/SystemLibraries.cmake), so the image adds only the CA certificates.
#
#   docker build -t ghcr.io/millrace/millrace-controller:0.1.0 .
FROM debian:12 AS build
WORKDIR /src
COPY scripts/bootstrap scripts/bootstrap
RUN MILLRACE_NO_GO=1 scripts/bootstrap
COPY . .
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMILLRACE_WERROR=ON \
      -DMILLRACE_BUILD_TESTS=OFF -DMILLRACE_BUILD_BENCH=OFF \
 && cmake --build /build -j "$(nproc)" --target millrace-controller \
 && strip /build/millrace-controller \
 && /build/millrace-controller --version

FROM debian:12-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates tzdata \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /build/millrace-controller /usr/local/bin/millrace-controller
USER 65532:65532
EXPOSE 8080 9443
ENTRYPOINT ["/usr/local/bin/millrace-controller"]
