"""Data layer: read files (`io`), parse record formats (`formats`), split (`split`), load a `DataConfig` (`load`),
the demo dataset (`bundled`) and `data inspect` (`inspect`). Imports no torch."""
