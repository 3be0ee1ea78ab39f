"""The PSP webhooks service: verify, dedupe, archive, normalise and publish canonical payment events."""
