"""The resources-server role: tools and ``verify``. See ``server``, ``schemas`` and ``answer``
(the final answer a verifier checks, :func:`final_answer_text`)."""

from nemo_gym.resources.answer import AnswerScope, final_answer_text

__all__ = ["AnswerScope", "final_answer_text"]
