"""Record types, errors and the plug-in registry. Imports no torch."""
