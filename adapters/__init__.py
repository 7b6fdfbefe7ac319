"""The documented ``socketserver`` API, running on trioserve (filled in by the adapters work)."""

__all__: list[str] = []
