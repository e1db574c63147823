# One image for the API, the workers and the CLI.
FROM python:3.11-slim-bookworm

RUN apt-get update \
    && apt-get install -y --no-install-recommends default-libmysqlclient-dev pkg-config gcc \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY api api
COPY worker worker
COPY shared shared
COPY migrations migrations
RUN pip install --no-cache-dir .

RUN useradd --create-home analytics
USER analytics
EXPOSE 8000
CMD ["analytics", "serve", "--host", "0.0.0.0", "--port", "8000"]
