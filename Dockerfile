# The dxpulse image: every service runs from it (compose sets `command: python -m services.<name>`).
#
#   docker build -t dxpulse:dev .
#
# Dependencies are installed with the exact pins of pyproject.toml, constrained by requirements.lock
# so transitive packages match what the tests ran with.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# pyproject.toml names README.md as the long description: the build fails without it.
COPY pyproject.toml README.md ./
COPY dxpulse/ dxpulse/
COPY services/ services/
COPY schemas/ schemas/
# dxpulse_client, which the dxpulse command sends reports with.
COPY clients/python/dxpulse_client/ clients/python/dxpulse_client/
RUN pip wheel --no-deps --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Dependencies first, in their own layer: it is rebuilt only when the pins change, not the code.
COPY pyproject.toml requirements.lock /tmp/deps/
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('/tmp/deps/pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/deps/requirements.txt \
    && pip install -c /tmp/deps/requirements.lock -r /tmp/deps/requirements.txt

COPY --from=build /wheels/ /tmp/wheels/
RUN pip install -c /tmp/deps/requirements.lock /tmp/wheels/*.whl \
    && rm -rf /tmp/wheels /tmp/deps

# Not root; the workers keep their local files (DXPULSE_STATE_DIR) in its home. USER is numeric so
# Kubernetes' runAsNonRoot can check it; deploy/k8s runs as the same uid and gid.
RUN groupadd --system --gid 10001 dxpulse \
    && useradd --system --uid 10001 --gid 10001 --create-home --home-dir /var/lib/dxpulse dxpulse
USER 10001:10001
WORKDIR /var/lib/dxpulse
