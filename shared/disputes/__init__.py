"""Disputes: dispute documents from canonical events, deadline alerts, evidence packets, PSP submission."""
