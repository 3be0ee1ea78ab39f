"""A model served behind an HTTP endpoint, in Vertex AI online prediction's shape.

Request ``{"instances": [<features>]}``, answer ``{"predictions": [p]}`` where ``p`` is the probability of
fraud, or an object holding it under ``score`` / ``probability`` (or ``scores``, the last class's). The
call's own timeout is the step's budget, so a slow endpoint cannot hold a charge; the step also bounds the
whole call (:mod:`shared.risk.step`). Authentication: an optional bearer token (an identity token for a
private endpoint); never logged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared.risk.base import Decision, Features


class ModelError(RuntimeError):
    """The endpoint failed or answered something that is not a prediction."""


@dataclass
class HttpModelScorer:
    url: str
    timeout_s: float
    review_at: float = 0.5
    block_at: float = 0.9
    token: str | None = None
    name: str = "model"
    _session: Any = field(default=None, repr=False)

    def score(self, features: Features) -> Decision:
        import requests

        if self._session is None:
            self._session = requests.Session()  # keep-alive: one connection per instance
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            resp = self._session.post(
                self.url, json={"instances": [features.as_dict()]}, headers=headers, timeout=self.timeout_s
            )
        except requests.Timeout as exc:
            # the endpoint timeout equals the step budget: whichever fires first, it is a timeout
            raise TimeoutError(f"model endpoint timed out: {type(exc).__name__}") from exc
        except requests.RequestException as exc:
            raise ModelError(f"model endpoint unreachable: {type(exc).__name__}") from exc
        if resp.status_code != 200:
            raise ModelError(f"model endpoint answered HTTP {resp.status_code}")
        p = _probability(resp.json())
        if p >= self.block_at:
            return Decision("block", ("model_score",), self.name, p)
        if p >= self.review_at:
            return Decision("review", ("model_score",), self.name, p)
        return Decision("allow", (), self.name, p)


def _probability(body: Any) -> float:
    try:
        pred = body["predictions"][0]
        if isinstance(pred, dict):
            pred = pred.get("score", pred.get("probability", (pred.get("scores") or [None])[-1]))
        p = float(pred)
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise ModelError("model answer is not a prediction") from exc
    if not 0.0 <= p <= 1.0:
        raise ModelError("model prediction outside [0, 1]")
    return p
