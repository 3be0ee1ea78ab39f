"""The local stack: real Google emulators plus every function under functions-framework."""
