"""Platform services (one subpackage per service, Teaclave's cut)."""

__all__: list[str] = []
