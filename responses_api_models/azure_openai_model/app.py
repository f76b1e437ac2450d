"""azure_openai_model: an Azure OpenAI deployment, behaving exactly as ``openai_model``.

Requests go to ``{azure_endpoint}/openai/responses?api-version=...`` (and
``/openai/deployments/{deployment}/chat/completions``) with the ``api-key`` header and the
deployment as the model; retries, deadlines and error answers are ``openai_model``'s.
"""

from __future__ import annotations

from pydantic import Field, SecretStr

from responses_api_models.openai_model.app import OpenAIModelServer, UpstreamRetrySettings


class AzureOpenAIModelConfig(UpstreamRetrySettings):
    azure_endpoint: str = Field(description="e.g. https://my-resource.openai.azure.com")
    api_key: SecretStr = Field(description="The resource's key, sent as the api-key header.")
    api_version: str = Field(description="e.g. 2025-04-01-preview")
    deployment: str = Field(description="The deployment name (sent as the model).")


class AzureOpenAIModelServer(OpenAIModelServer):
    config: AzureOpenAIModelConfig  # type: ignore[assignment]

    def _url(self, path: str) -> str:
        base = self.config.azure_endpoint.rstrip("/") + "/openai"
        if path == "/chat/completions":
            base += f"/deployments/{self.config.deployment}"
        return f"{base}{path}?api-version={self.config.api_version}"

    def _headers(self) -> dict[str, str]:
        return {"api-key": self.config.api_key.get_secret_value()}

    def _model(self) -> str:
        return self.config.deployment


if __name__ == "__main__":
    AzureOpenAIModelServer.run_webserver()
