"""Pure domain code: no I/O, no clock, no client libraries."""
