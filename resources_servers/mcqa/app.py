"""mcqa: multiple-choice questions, graded by the option letter the response chose.

The row gives the options (``[{"A": text}, ...]``), the gold letter and optionally a grading
mode and the prompt template's answer regex. ``verify`` joins the assistant message texts,
asks ``extraction.py`` which option they chose and rewards 1.0 iff it is the gold letter.
Malformed rows (bad option keys, a gold letter that is not an option, a regex that does not
compile) are rejected with 422 naming the field, never scored.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from nemo_gym.authoring import final_answer_text
from nemo_gym.base_resources_server import (
    BaseResourcesServerConfig,
    BaseVerifyRequest,
    BaseVerifyResponse,
    SimpleResourcesServer,
)
from resources_servers.mcqa.extraction import GradingMode, Method, Reason, extract_answer


class McqaConfig(BaseResourcesServerConfig):
    pass


class TemplateMetadata(BaseModel):
    """What the row's prompt template says about its answer format (other keys are kept)."""

    model_config = ConfigDict(extra="allow")

    output_regex: str | None = None
    """Pattern for the answer; group 1 (or the whole match) is the answer, last match wins."""

    @field_validator("output_regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value, re.IGNORECASE)
            except re.error as exc:
                raise ValueError(f"output_regex does not compile: {exc}") from exc
        return value


class McqaVerifyRequest(BaseVerifyRequest):
    options: list[dict[str, str]]
    """The choices in order, one ``{letter: text}`` per option; letters are upper-cased."""
    expected_answer: str
    """The gold letter (upper-cased); must be one of the option letters."""
    grading_mode: GradingMode = "lenient"
    template_metadata: TemplateMetadata | None = None
    uuid: str | None = None
    metadata: dict[str, Any] | None = None
    """Carried along, not used."""

    @field_validator("options")
    @classmethod
    def _one_letter_per_option(cls, value: list[dict[str, str]]) -> list[dict[str, str]]:
        letters: list[str] = []
        for i, option in enumerate(value):
            if len(option) != 1:
                raise ValueError(f"option {i} must have exactly one key (its letter): {option}")
            (key,) = option
            if not (len(key.strip()) == 1 and key.strip().isascii() and key.strip().isalpha()):
                raise ValueError(f"option {i}: the key must be a single letter A-Z, got {key!r}")
            letters.append(key.strip().upper())
        if len(value) < 2 or len(set(letters)) != len(letters):
            raise ValueError(f"need at least two options with distinct letters, got {letters}")
        return [
            {letter: text}
            for letter, option in zip(letters, value, strict=True)
            for text in option.values()
        ]

    @field_validator("expected_answer")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.strip().upper()

    @model_validator(mode="after")
    def _gold_is_an_option(self) -> McqaVerifyRequest:
        if self.expected_answer not in self.option_map():
            raise ValueError(
                f"expected_answer {self.expected_answer!r} is not one of the option letters "
                f"{list(self.option_map())}"
            )
        return self

    def option_map(self) -> dict[str, str]:
        """letter -> option text, in order."""
        return {letter: text for option in self.options for letter, text in option.items()}


class McqaVerifyResponse(McqaVerifyRequest, BaseVerifyResponse):
    extracted_answer: str | None
    """The chosen letter, or null (no answer found, or several options named)."""
    extraction_method: Method | None
    """The strategy that decided: output_regex, boxed, answer_marker, bare_letter, option_text."""
    extraction_reason: Reason | None
    """Why there is no letter: no_answer_found, multiple_options or not_an_option."""
    named_options: list[str]
    """The letters the deciding span named, when there was not exactly one usable letter."""


class McqaServer(SimpleResourcesServer):
    config: McqaConfig

    async def verify(self, body: McqaVerifyRequest) -> McqaVerifyResponse:
        regex = body.template_metadata.output_regex if body.template_metadata else None
        found = extract_answer(
            final_answer_text(body.response, scope="all"),
            body.option_map(),
            body.grading_mode,
            regex,
        )
        return McqaVerifyResponse(
            **body.model_dump(),
            reward=float(found.letter == body.expected_answer),
            extracted_answer=found.letter,
            extraction_method=found.method,
            extraction_reason=found.reason,
            named_options=list(found.named),
        )


if __name__ == "__main__":
    McqaServer.run_webserver()
