"""PSP webhook adapters: one module per PSP, one line per PSP in :mod:`shared.psp.registry`."""
