"""`SearchSpace`: membership of a search space, derived from its ``why_not``."""
from __future__ import annotations

from typing import Any


class SearchSpace:
    """Base of the spaces: `contains` and `validate` from the subclass's ``why_not``."""

    def why_not(self, genotype: Any) -> str | None:
        """Why ``genotype`` is outside the space, or None if it is inside."""
        raise TypeError(f"{type(self).__name__} must define why_not()")

    def contains(self, genotype: Any) -> bool:
        """Whether ``genotype`` is a cell of this space (see `why_not`)."""
        return self.why_not(genotype) is None

    def validate(self, genotype: Any) -> Any:
        """Returns ``genotype`` or raises ``ValueError`` saying why it is outside."""
        why = self.why_not(genotype)
        if why is not None:
            raise ValueError(f"genotype is not in {self!r}: {why}")
        return genotype
