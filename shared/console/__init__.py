"""The operator console: a private, server-rendered web app over the platform's stores and services.

Pages read Firestore, Pub/Sub and Cloud Storage directly (:mod:`shared.console.queries`); every action goes
through the services the operator commands use, behind one guard (:mod:`shared.console.actions`: CSRF,
strict validation, an idempotency claim and an append-only audit entry). Templates and static files are
the ``console`` function's own files, handed in by its entry point.
"""
