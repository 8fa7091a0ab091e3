"""The application builder: `RayServeArgs` to a Ray Serve application."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, field_validator
from ray import serve
from ray.serve import Application

from langchain_ce_rerank.engine import DEFAULT_CROSS_ENCODER, Reranker, RerankerSettings
from langchain_ce_rerank.engine.checks import check_instruction
from langchain_ce_rerank.errors import InstructionNotSupportedError
from langchain_ce_rerank.serving.contract import RequestLimits
from langchain_ce_rerank.serving.ray_serve.ingress import IngressDeployment
from langchain_ce_rerank.serving.ray_serve.replica import CrossEncoderDeployment


class RayServeArgs(RequestLimits):
    """The application's arguments: the `args:` of a Ray Serve config.

    The request limits and the API key are those of `ce-rerank serve`
    (`RequestLimits`; the key may instead come from the `CE_RERANK_API_KEY`
    environment variable where the application is built, which keeps it out
    of the config file). Replica count, autoscaling and CPUs are Ray Serve
    deployment options; the fields here set their defaults, and a config's
    `deployments:` section overrides them.

    Example:
        ```python
        from langchain_ce_rerank.serving.ray_serve import RayServeArgs

        args = RayServeArgs(model="/models/ms-marco", num_replicas=2, max_documents=200)
        print(args.served_name, args.max_batch_size, args.max_documents)
        ```
    """

    model: str = DEFAULT_CROSS_ENCODER
    """A Hugging Face model id, or a folder every replica's machine can read."""

    model_name: str | None = None
    """The name clients may send as `model`; None uses `model`."""

    instruction: str | None = Field(default=None, strict=True)
    """The default task an instruction-following reranker scores for, as
    `ce-rerank serve --instruction` sets it; a request's `instruction` field
    overrides it. Not blank. A model that reads no instruction is refused
    when the application is built (the model is loaded there once to find
    out), not in every replica. None: the model's own default."""

    reranker: dict[str, Any] = Field(default_factory=dict)
    """Other engine settings (`activation`, `batch_size`, `max_length`,
    `device`, `backend`, `quantization`, ...), as `Reranker(**reranker)`.
    `calibration` (the path of a `ce-rerank eval --calibrate` file) adds
    `relevance_probability` to each result and lets a request send
    `min_probability`, as `ce-rerank serve --calibration` does."""

    max_batch_size: int = Field(default=16, ge=1)
    """Most requests coalesced into one model call (`@serve.batch`)."""

    batch_wait_timeout_s: float = Field(default=0.005, ge=0)
    """How long a request may wait for others to share its model call."""

    use_cache: bool = True
    """Answer repeated (query, document) pairs from each replica's score cache."""

    num_replicas: int = Field(default=1, ge=1)
    """Replicas to run (Ray Serve's `num_replicas`; a config may instead give
    an `autoscaling_config`)."""

    num_cpus: float = Field(default=1.0, ge=0)
    """CPUs Ray reserves for each replica (`ray_actor_options.num_cpus`)."""

    @field_validator("instruction")
    @classmethod
    def _instruction_has_text(cls, instruction: str | None) -> str | None:
        check_instruction(instruction)
        return instruction

    @property
    def served_name(self) -> str:
        """The model name answered in `meta.model`."""
        return self.model_name or self.model

    def request_limits(self) -> RequestLimits:
        """The limits the ingress holds requests to.

        An `api_key` left out is read from `CE_RERANK_API_KEY` here, in the
        process that builds the application (`serve run`, `serve deploy`).
        """
        limits = RequestLimits.model_validate(
            self.model_dump(include=set(RequestLimits.model_fields))
        )
        key = os.environ.get("CE_RERANK_API_KEY")
        if limits.api_key is None and key:
            limits = limits.model_copy(update={"api_key": SecretStr(key)})
        return limits

    def engine_settings(self) -> dict[str, Any]:
        """The validated engine settings each replica builds its `Reranker` from.

        Raises:
            ValueError: `reranker` holds an unknown or invalid setting, or a
                `calibration` fitted for another model or scoring setup (the
                message says what differs), or the instruction is given twice.
            InstructionNotSupportedError: An `instruction` (a `ValueError`)
                for a model that reads none.
        """
        # A relative folder is made absolute: replicas need not share the
        # working directory of the process that built the application.
        model = (
            str(Path(self.model).resolve()) if Path(self.model).exists() else self.model
        )
        if self.instruction is not None and "instruction" in self.reranker:
            msg = (
                "the instruction is given twice, as args.instruction and as "
                "args.reranker.instruction; keep args.instruction"
            )
            raise ValueError(msg)
        settings = {**self.reranker, "model": model}
        if self.instruction is not None:
            settings["instruction"] = self.instruction
        calibration = settings.get("calibration")
        if isinstance(calibration, str | os.PathLike) and Path(calibration).exists():
            settings["calibration"] = str(Path(calibration).resolve())
        unknown = sorted(set(settings) - set(RerankerSettings.model_fields))
        if unknown:
            msg = (
                f"reranker has unknown settings {unknown}; use engine settings "
                f"such as {sorted(RerankerSettings.model_fields)[:6]}"
            )
            raise ValueError(msg)
        RerankerSettings(**settings)
        if settings.get("instruction") is not None:
            # Refused here, once, as `ce-rerank serve` refuses it at start;
            # only the loaded model can say whether it reads one
            # (engine.instructions), so it is loaded in this process.
            try:
                Reranker(**settings).instruction_for_call()
            except InstructionNotSupportedError as err:
                raise err.with_parameter("args.instruction") from err
        if settings.get("calibration") is not None:
            # Checked here, where the application is built (the engine only
            # fingerprints the model's folder; nothing is loaded), so a
            # calibration for another model fails once, saying why, instead
            # of in every replica's constructor.
            Reranker(**settings)
        return settings


def build_app(args: RayServeArgs) -> Application:
    """The Ray Serve application for `args`: one deployment of the engine.

    Args:
        args: Model, engine settings, batching and replica defaults.

    Returns:
        An application for `serve.run` (or a Serve config's `import_path`).

    Raises:
        ValueError: An engine setting in `args.reranker` is unknown or
            invalid, or its `calibration` was fitted for another model, or an
            `instruction` is given to a model that reads none
            (`InstructionNotSupportedError`).
    """
    settings = args.engine_settings()
    scorer = CrossEncoderDeployment.options(
        num_replicas=args.num_replicas,
        max_ongoing_requests=max(2 * args.max_batch_size, 8),
        ray_actor_options={"num_cpus": args.num_cpus},
    ).bind(
        settings,
        max_batch_size=args.max_batch_size,
        batch_wait_timeout_s=args.batch_wait_timeout_s,
        use_cache=args.use_cache,
    )
    app: Application = IngressDeployment.options(
        max_ongoing_requests=1000, ray_actor_options={"num_cpus": 0}
    ).bind(scorer, settings, args.request_limits(), args.served_name)
    return app


def app_builder(args: dict[str, Any]) -> Application:
    """Ray Serve's application builder: `import_path: ...ray_serve:app_builder`.

    Args:
        args: The config's `args:` mapping, validated as `RayServeArgs`.

    Returns:
        The application.

    Raises:
        pydantic.ValidationError: An unknown or invalid argument.

    Example:
        ```python
        from langchain_ce_rerank.serving.ray_serve import app_builder

        app = app_builder({"model": "/models/ms-marco", "num_replicas": 2})
        ```
    """
    return build_app(RayServeArgs.model_validate(args))


def run_app(
    args: RayServeArgs,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    name: str = "ce-rerank",
    blocking: bool = True,
) -> None:
    """Start Ray Serve on `host:port` and deploy the reranker there.

    Connects to the Ray cluster of `RAY_ADDRESS` (or starts a local one).

    Args:
        args: What to deploy.
        host: Interface the HTTP proxy listens on.
        port: Its port.
        name: The Serve application's name.
        blocking: Serve until interrupted (Ctrl-C); False returns once deployed.
    """
    serve.start(http_options={"host": host, "port": port})
    serve.run(build_app(args), name=name, route_prefix="/", blocking=blocking)
