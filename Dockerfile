# modelfab model server as a container (docs/deploy.md, "As a container", has the full steps).
#   docker build -t modelfab .                                   # extras: signal,postgres (see EXTRAS below)
#   docker build --build-arg EXTRAS=signal,image,series,postgres,s3 -t modelfab .
#   sudo install -d -o 10001 -g 10001 /srv/modelfab              # the container runs as uid 10001
#   docker run --rm -v /srv/modelfab:/workspace modelfab init /workspace
#   docker run --rm -v /srv/modelfab:/workspace -v "$PWD":/in:ro modelfab models import /in/line3.mfpkg
#   docker run --rm -v /srv/modelfab:/workspace modelfab models promote line3:1 --stage production
#   docker run -d --name modelfab -p 8000:8000 -v /srv/modelfab:/workspace modelfab
# ENTRYPOINT is `modelfab`: arguments after the image name are a modelfab command (`init`, `serve ...`), never
# `modelfab ...` again. With no arguments the image serves every production model on 0.0.0.0:8000.
# The workspace (metadata + blobs) lives on the mounted volume; the image holds no data.
FROM python:3.11-slim

# modelfab extras installed in the image (pyproject.toml [project.optional-dependencies]), comma-separated.
ARG EXTRAS=signal,postgres

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 MODELFAB_HOME=/workspace
RUN apt-get update && apt-get install -y --no-install-recommends libsndfile1 libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 modelfab

WORKDIR /opt/modelfab
COPY pyproject.toml README.md ./
COPY modelfab ./modelfab
RUN pip install ".[${EXTRAS}]"

USER modelfab
VOLUME ["/workspace"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz').status == 200 else 1)"
ENTRYPOINT ["modelfab"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
