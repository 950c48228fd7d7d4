"""Command-line tools (not installed with the package).

A package only so that code shared by the scripts of a folder has one
import path from the repository root, e.g.
``tools.model_converters.reference_keys`` for the converters and the tests.
"""
