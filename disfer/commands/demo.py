"""CLI commands of this area (not yet written)."""


def register(sub) -> None:
    return None
