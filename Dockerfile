# One image for the four services; the argument picks which one runs:
#   docker build -t shopmesh:0.1.0 .
#   docker run shopmesh:0.1.0 catalog        # = python -m services catalog
# istio/ runs it with args [<service>], as user 10001 on a read-only root
# filesystem. It keeps no data: each service's database is in PostgreSQL, reached
# through libpq's PG* variables or SHOPMESH_DATABASE_URL (istio/README.md).
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
# What the services run (see .dockerignore): generated stubs, mesh/, services/; the
# operator tooling (shopmesh/) and its `cli` extra stay out of the image.
COPY pyproject.toml README.md ./
COPY gen/python gen/python
COPY mesh mesh
COPY services services
# A plain (not editable) install into a venv that the runtime stage copies whole.
RUN python -m venv /opt/shopmesh \
    && /opt/shopmesh/bin/pip install --no-cache-dir --no-compile . \
    && /opt/shopmesh/bin/python -m compileall -q /opt/shopmesh

FROM ${PYTHON_IMAGE}
RUN groupadd --gid 10001 shopmesh \
    && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin shopmesh
COPY --from=build /opt/shopmesh /opt/shopmesh
# Bytecode is compiled at build time: the root filesystem is read-only at run time.
ENV PATH=/opt/shopmesh/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SHOPMESH_LISTEN=0.0.0.0:50051 \
    SHOPMESH_METRICS_LISTEN=0.0.0.0:9464
# Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
# Nothing is written at run time; the working directory is the (read-only) install.
WORKDIR /opt/shopmesh
# gRPC (with grpc.health.v1 and reflection), Prometheus /metrics.
EXPOSE 50051 9464
# Exec form: the server is PID 1 and gets SIGTERM itself, so it drains and exits 0.
ENTRYPOINT ["python", "-m", "services"]
