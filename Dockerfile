# keepwarm: one image for the API, the workers and the migrations.
# The command picks the role: `keepwarm api` (default), `keepwarm worker`, `keepwarm migrate`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system --gid 10001 keepwarm \
    && useradd --system --uid 10001 --gid keepwarm --home-dir /var/lib/keepwarm \
        --shell /usr/sbin/nologin keepwarm \
    && install -d -o keepwarm -g keepwarm /var/lib/keepwarm

WORKDIR /src
COPY pyproject.toml README.md ./
COPY models ./models
COPY workflows ./workflows
COPY activities ./activities
COPY workers ./workers
COPY api ./api
RUN pip install . && rm -rf /src

WORKDIR /var/lib/keepwarm
ENV KEEPWARM_DATA_DIR=/var/lib/keepwarm
USER 10001:10001

EXPOSE 8000
ENTRYPOINT []
CMD ["keepwarm", "api"]
