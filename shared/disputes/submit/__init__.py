"""Evidence submission through each PSP's API (one module per PSP, one line each in :mod:`.registry`)."""

from shared.disputes.submit.base import Submission, SubmitError, Submitted, Submitter
from shared.disputes.submit.registry import submitter_for, supported

__all__ = ["Submission", "SubmitError", "Submitted", "Submitter", "submitter_for", "supported"]
