"""The private subscriptions API: bounded commands (``commands``), the service running them on Firestore
(``service``) and the HTTP routing (``api``). The renewals function (``shared.renewals``) bills what it stores."""
