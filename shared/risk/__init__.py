"""The risk step: before a renewal charge and on every incoming payment fact, a scorer says allow, review or
block, with its reasons; every decision is recorded once with the features it used (training data later).

* :mod:`shared.risk.base`: the subject, the features, the decision and the :class:`Scorer` protocol;
* :mod:`shared.risk.rules`: the default rules scorer (velocity, decline bursts, countries, amount spikes);
* :mod:`shared.risk.model`: a model served behind an HTTP endpoint (Vertex AI online prediction's shape);
* :mod:`shared.risk.step`: features from one profile read off the charge path, the time budget and fail mode,
  the decision recorded once (on the charge attempt, or in ``risk_decisions`` for a fact);
* :mod:`shared.risk.config`: per-account settings.
"""

from shared.risk.base import Decision, Features, Scorer, Subject, Verdict
from shared.risk.step import RiskStep, risk_step

__all__ = ["Decision", "Features", "RiskStep", "Scorer", "Subject", "Verdict", "risk_step"]
