"""Wire models of the viewer's JSON endpoints (``app``), built by ``stats``, ``query`` and
``compare``; :data:`STATUSES` is the one list of the statuses a line can have."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from nemo_gym.rollouts.row import ROLLOUT_STATUSES, RolloutStatus
from nemo_gym.rollouts.stats import IntervalMethod

#: A line's status: a row's (``nemo_gym.rollouts.row.row_status``), or not a JSON object at all.
Status = RolloutStatus | Literal["malformed"]
STATUSES: tuple[Status, ...] = (*ROLLOUT_STATUSES, "malformed")
SortKey = Literal["line", "reward", "status", "steps", "tokens", "elapsed", "task"]
TaskSort = Literal["task", "pass_rate", "mean_reward", "failed"]
CompareFilter = Literal["changed", "better", "worse", "all"]


class FileInfo(BaseModel):
    """One of the files named on the command line; ``id`` is its only handle on the wire."""

    id: int
    name: str
    path: str
    rows: int
    bytes: int
    version: int


class FileList(BaseModel):
    files: list[FileInfo]
    pass_threshold: float


class FileVersion(BaseModel):
    """What the page polls: it refreshes when ``version`` changes."""

    id: int
    rows: int
    bytes: int
    version: int


class KindCount(BaseModel):
    status: str
    kind: str
    count: int


class RewardStats(BaseModel):
    """Mean reward over scored rows (failed and malformed rows are excluded) with its 95%
    confidence interval: ``wilson`` when every reward is 0 or 1, else ``t`` (None for one row)."""

    n: int
    mean: float
    std: float
    ci_low: float | None
    ci_high: float | None
    ci_method: IntervalMethod
    min: float
    max: float


class HistBin(BaseModel):
    lo: float
    hi: float
    count: int


class PassAtK(BaseModel):
    """Unbiased pass@k averaged over the ``tasks`` that have at least k scored rows."""

    k: int
    value: float
    tasks: int


class ToolCount(BaseModel):
    name: str
    rows: int


class MalformedLine(BaseModel):
    row: int
    line: int
    error: str


class FileSummary(BaseModel):
    file: FileInfo
    rows: int
    status_counts: dict[str, int]
    failure_kinds: list[KindCount]
    reward: RewardStats | None
    histogram: list[HistBin]
    pass_threshold: float
    tasks: int
    max_repeats: int
    pass_at_k: list[PassAtK]
    tools: list[ToolCount]
    has_tokens: bool
    malformed: list[MalformedLine]


class RowBrief(BaseModel):
    """One line of the rollout list."""

    id: int
    line: int
    status: Status
    failure_kind: str | None
    reward: float | None
    steps: int | None
    tokens: int | None
    elapsed_s: float | None
    task_index: int | None
    repeat_index: int | None
    tools: list[str]
    preview: str
    error: str | None = None


class RowPage(BaseModel):
    total: int
    matched: int
    offset: int
    limit: int
    rows: list[RowBrief]


class RowDetail(BaseModel):
    """One line in full: ``data`` is its JSON object, or ``raw`` and ``error`` if malformed."""

    id: int
    line: int
    file_id: int
    status: Status
    data: dict[str, Any] | None = None
    raw: str | None = None
    error: str | None = None


class TaskStat(BaseModel):
    """``key`` filters the rollout list (``task=``); ``label`` is how the page names the task."""

    key: int
    label: str
    task_index: int | None
    n: int
    scored: int
    failed: int
    passed: int
    mean_reward: float | None
    pass_rate: float | None
    preview: str
    first_row: int


class TaskPage(BaseModel):
    total: int
    offset: int
    limit: int
    tasks: list[TaskStat]


class CompareSide(BaseModel):
    n: int
    scored: int
    mean_reward: float | None
    pass_rate: float | None
    rows: list[int]


class CompareTask(BaseModel):
    key: int
    label: str
    task_index: int | None
    preview: str
    a: CompareSide | None
    b: CompareSide | None
    delta: float | None


class CompareResult(BaseModel):
    a: FileInfo
    b: FileInfo
    joined_by: Literal["task_index", "input_hash"]
    mean_a: float | None
    mean_b: float | None
    better: int
    worse: int
    same: int
    only_a: int
    only_b: int
    matched: int
    offset: int
    limit: int
    tasks: list[CompareTask]
