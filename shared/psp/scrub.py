"""Kept for importers: the scrubber lives in :mod:`shared.scrub` (events use it too, not only PSP code)."""

from shared.scrub import CVC_MASK, PAN_MASK, is_cvc_name, is_pan, luhn_ok, scrub, scrub_bytes, scrub_text

__all__ = ["CVC_MASK", "PAN_MASK", "is_cvc_name", "is_pan", "luhn_ok", "scrub", "scrub_bytes", "scrub_text"]
