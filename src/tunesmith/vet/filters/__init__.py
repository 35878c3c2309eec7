"""The built-in vetting filters; importing this package registers them all in `vet.base.FILTERS`."""

from tunesmith.vet.filters import contamination, dedup, label_noise, outliers, pii, poison, quality  # noqa: F401
