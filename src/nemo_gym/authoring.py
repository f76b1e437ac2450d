"""The public surface for writing an environment, an agent or a model server.

Everything a server in ``resources_servers/``, ``responses_api_agents/`` or
``responses_api_models/`` (and the ``ng_init_resources_server`` template) imports from Gym is
here; a unit test checks that they import nothing else (besides the NeMo Gym compatibility
modules ``base_*``, ``server_utils``, ``openai_utils``, ``config_types`` and ``global_config``,
whose ``__all__`` is public too). The names are re-exported from the modules that own them:

* role bases and their settings: :class:`SimpleResourcesServer` (tools + ``verify``),
  :class:`SimpleResponsesAPIAgent` (``/run``), :class:`SimpleResponsesAPIModel`; each server
  may override the ``async def on_startup(self)`` / ``async def on_shutdown(self)`` hooks of
  :class:`SimpleServer` (``server.base``);
* wire models: the ``/seed_session``, ``/verify`` and ``/run`` bodies, the Responses and Chat
  Completions models (``protocol``), ``/aggregate_metrics``;
* :func:`final_answer_text`: the model's final answer a verifier checks (``resources.answer``);
* :class:`SessionStore`: per-rollout state with a time-to-live and a bound, keyed by
  ``request.session[SESSION_ID_KEY]`` (``server.session_store``);
* errors: Gym's hierarchy (``core.errors``) and the one mapping of upstream failures to HTTP
  answers, :func:`upstream_failure` / :func:`upstream_answer_error` (``server.errors``);
* for servers that call other servers or upstreams: :class:`ServerClient`,
  :class:`HttpResponse`, :class:`RetryPolicy`, and for proxy routes :func:`validated_json` and
  :class:`JSONResponseBytes`;
* for agents: :class:`RolloutFailure`, :func:`finished_row`, :func:`failed_row` (``rollouts``);
* for model servers: the Responses <-> Chat Completions conversion;
* for heavy verification on a Ray cluster (``verify_on_ray``): :func:`offload`,
  :func:`ray_address`, :class:`OffloadError` (``ray_support.offload``; Ray imported only then);
* for an environment's own ``+key=value`` command (a data generator): :func:`cli_entry`,
  :func:`load_params`, :class:`LoadedConfig`, :func:`instance_section`.
"""

from nemo_gym.agent.server import (
    BaseResponsesAPIAgentConfig,
    BaseRunRowRequest,
    SimpleResponsesAPIAgent,
)
from nemo_gym.cli.params import cli_entry, load_params
from nemo_gym.config.instances import ServerRef, instance_section
from nemo_gym.config.loader import LoadedConfig
from nemo_gym.config_types import (
    AggregateMetrics,
    AggregateMetricsRequest,
    ModelServerRef,
    ResourcesServerRef,
)
from nemo_gym.core.errors import ConfigError, GymError, InputDataError, UpstreamError
from nemo_gym.core.paths import resolve_path
from nemo_gym.model.server import BaseResponsesAPIModelConfig, SimpleResponsesAPIModel
from nemo_gym.protocol.chat import (
    NeMoGymChatCompletion,
    NeMoGymChatCompletionCreateParamsNonStreaming,
)
from nemo_gym.protocol.chat_conversion import (
    ConversionError,
    chat_to_response,
    responses_to_chat_request,
)
from nemo_gym.protocol.responses import NeMoGymResponse, NeMoGymResponseCreateParamsNonStreaming
from nemo_gym.protocol.shapes import response_shape_error
from nemo_gym.ray_support.offload import OffloadError, offload, ray_address
from nemo_gym.resources.answer import AnswerScope, final_answer_text
from nemo_gym.resources.schemas import (
    BaseRunRequest,
    BaseSeedSessionRequest,
    BaseSeedSessionResponse,
    BaseVerifyRequest,
    BaseVerifyResponse,
)
from nemo_gym.resources.server import BaseResourcesServerConfig, SimpleResourcesServer
from nemo_gym.rollouts.records import RolloutFailure, failed_row, finished_row
from nemo_gym.server.base import BaseServerConfig, SimpleServer, StartupError
from nemo_gym.server.bodies import validated_json
from nemo_gym.server.client import ServerClient
from nemo_gym.server.errors import (
    error_body,
    upstream_answer_error,
    upstream_failure,
    upstream_status,
)
from nemo_gym.server.http_client import HttpResponse, RetryPolicy
from nemo_gym.server.routing import JSONResponseBytes
from nemo_gym.server.session_store import SessionStore
from nemo_gym.server.sessions import SESSION_HEADER, SESSION_ID_KEY

__all__ = [
    "SESSION_HEADER",
    "SESSION_ID_KEY",
    "AggregateMetrics",
    "AggregateMetricsRequest",
    "AnswerScope",
    "BaseResourcesServerConfig",
    "BaseResponsesAPIAgentConfig",
    "BaseResponsesAPIModelConfig",
    "BaseRunRequest",
    "BaseRunRowRequest",
    "BaseSeedSessionRequest",
    "BaseSeedSessionResponse",
    "BaseServerConfig",
    "BaseVerifyRequest",
    "BaseVerifyResponse",
    "ConfigError",
    "ConversionError",
    "GymError",
    "HttpResponse",
    "InputDataError",
    "JSONResponseBytes",
    "LoadedConfig",
    "ModelServerRef",
    "NeMoGymChatCompletion",
    "NeMoGymChatCompletionCreateParamsNonStreaming",
    "NeMoGymResponse",
    "NeMoGymResponseCreateParamsNonStreaming",
    "OffloadError",
    "ResourcesServerRef",
    "RetryPolicy",
    "RolloutFailure",
    "ServerClient",
    "ServerRef",
    "SessionStore",
    "SimpleResourcesServer",
    "SimpleResponsesAPIAgent",
    "SimpleResponsesAPIModel",
    "SimpleServer",
    "StartupError",
    "UpstreamError",
    "chat_to_response",
    "cli_entry",
    "error_body",
    "failed_row",
    "final_answer_text",
    "finished_row",
    "instance_section",
    "load_params",
    "offload",
    "ray_address",
    "resolve_path",
    "response_shape_error",
    "responses_to_chat_request",
    "upstream_answer_error",
    "upstream_failure",
    "upstream_status",
    "validated_json",
]
