# modelfab model server as a container.
#   docker build -t modelfab .
#   docker run -p 8000:8000 -v /srv/modelfab:/workspace modelfab serve --host 0.0.0.0
# The workspace (metadata + blobs) lives on the mounted volume; the image holds no data.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 MODELFAB_HOME=/workspace
RUN apt-get update && apt-get install -y --no-install-recommends libsndfile1 libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 modelfab

WORKDIR /opt/modelfab
COPY pyproject.toml README.md ./
COPY modelfab ./modelfab
RUN pip install ".[signal]"

USER modelfab
VOLUME ["/workspace"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz').status == 200 else 1)"
ENTRYPOINT ["modelfab"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
