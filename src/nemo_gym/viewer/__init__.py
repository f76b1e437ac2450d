"""``ng_viewer``: a local, read-only web page over rollout JSONL files.

``index`` scans a file once into line offsets and a compact per-row summary (``rowinfo``) and
picks up appended lines; ``stats``, ``query`` and ``compare`` answer the page's questions from
that index; ``app`` serves them as JSON (models in ``schemas``) next to the static front end in
``static/``. The command line lives in ``nemo_gym.cli.viewer``.
"""

from __future__ import annotations

from nemo_gym.viewer.app import ViewerSettings, create_app

__all__ = ["ViewerSettings", "create_app"]
