# The Python 3.11 application: web workers (console, webhooks), notifier, scheduler (one image, several
# commands: see compose.yaml).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 OMP_NUM_THREADS=1 \
    KABASHOAX_DATA_DIR=/data

WORKDIR /app
# DejaVu Sans Bold draws the verdict cards (PUBLIC_CARD_FONT); Pillow's bitmap font is the poor fallback.
RUN apt-get update \
    && apt-get install -y --no-install-recommends fonts-dejavu-core=2.37-6 \
    && rm -rf /var/lib/apt/lists/*
# CPU torch first: a bare "torch" would pull a multi-GB CUDA build.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
COPY requirements.lock.txt ./
RUN pip install -r requirements.lock.txt
COPY pyproject.toml README.md ./
COPY knowledge_base ./knowledge_base
COPY nlu ./nlu
COPY bot ./bot
COPY fact_team_console ./fact_team_console
COPY kabashoax ./kabashoax
RUN pip install --no-deps . && useradd --create-home --uid 10001 kabashoax && mkdir -p /data \
    && chown kabashoax /data
USER 10001
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health')"]
# One container with everything (SQLite in /data); compose.yaml runs the services apart instead.
CMD ["kabashoax", "run", "--host", "0.0.0.0", "--no-rasa"]
