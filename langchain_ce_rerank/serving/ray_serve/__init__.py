"""The reranker as a Ray Serve deployment: N replicas behind Cohere's `/v2/rerank`.

Two deployments: `RerankIngress` speaks HTTP (the request contract of
`ce-rerank serve`: API key, limits, errors; ordering; no model) and sends
each request's scoring to one of N `CrossEncoderDeployment` replicas, each
holding one engine whose model loads once, when the replica starts.
Requests waiting at a replica are coalesced by `@serve.batch` and scored
through `serving.jobs.score_jobs`, as `ce-rerank serve`'s batcher scores
them; a request whose replica dies is sent again to a live one. How many
replicas run, autoscaling and CPUs per replica are Ray Serve's own
deployment options, so a Serve config file sets them:

```yaml
applications:
  - name: ce-rerank
    route_prefix: /
    import_path: langchain_ce_rerank.serving.ray_serve:app_builder
    args: {model: cross-encoder/ms-marco-MiniLM-L6-v2}
    deployments:
      - name: CrossEncoderDeployment
        num_replicas: 2
```

`serve run examples/ray_serve_config.yaml` serves it; `RemoteCrossEncoder(url,
api="cohere")` (or any Cohere v2 client) calls it. The request and response
bodies are the models of `serving/schemas.py`, as for `ce-rerank serve`.
"""

from __future__ import annotations

from langchain_ce_rerank.optional import require

# Importing this module means deploying on Ray Serve (nothing else imports it).
# The check runs once, here, before any module of this package imports ray or
# starlette (a submodule's import runs this file first; ray.serve brings
# ray.exceptions, ray.serve.exceptions, ray.serve.handle and starlette).
require("ray.serve", extra="ray", feature="the Ray Serve deployment")

from langchain_ce_rerank.serving.jobs import ScoreJob  # noqa: E402
from langchain_ce_rerank.serving.ray_serve.application import (  # noqa: E402
    RayServeArgs,
    app_builder,
    build_app,
    run_app,
)
from langchain_ce_rerank.serving.ray_serve.ingress import (  # noqa: E402
    INGRESS_NAME,
    IngressDeployment,
    RerankIngress,
)
from langchain_ce_rerank.serving.ray_serve.replica import (  # noqa: E402
    DEPLOYMENT_NAME,
    CrossEncoderDeployment,
    CrossEncoderReplica,
)

__all__ = [
    "DEPLOYMENT_NAME",
    "INGRESS_NAME",
    "CrossEncoderDeployment",
    "CrossEncoderReplica",
    "IngressDeployment",
    "RayServeArgs",
    "RerankIngress",
    "ScoreJob",
    "app_builder",
    "build_app",
    "run_app",
]
