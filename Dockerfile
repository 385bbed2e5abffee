# pyetcd member image. Build: docker build -t pyetcd .
FROM python:3.11-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
EXPOSE 2379 2380
VOLUME /data
# Same flags and ETCD_* variables as etcd; the compose file sets them per member.
ENTRYPOINT ["pyetcd"]
CMD ["--data-dir", "/data", "--listen-client-urls", "http://0.0.0.0:2379", "--listen-peer-urls", "http://0.0.0.0:2380"]
