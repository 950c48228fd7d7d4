"""Plain-torch re-implementations of reference code, used as test oracles."""
