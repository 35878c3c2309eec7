"""tunesmith.train: one training loop with pluggable strategies, a target-only chunked loss, atomic checkpoints.

Entry point: `tunesmith.train.loop.train`. Strategies: `tunesmith.train.strategy.STRATEGIES`. Imports no torch at
package import time.
"""
