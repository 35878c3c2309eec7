"""Data augmentation for the training split: word and character operators, back-translation, LLM paraphrase
and synthetic examples, each a registered plug-in; a quality gate; provenance tags.

- `augment.ops`: the pure text operators (`synonym_replace`, `random_insert`, `random_swap`, `random_delete`,
  `char_noise`), reusable as robustness perturbations: `op(text, random.Random(seed), ...)`.
- `augment.runner.augment_records`: the whole stage (quotas, rounds, gate, vetting, tags).
- `augment.provenance`: how an augmented record names its augmenter, parent and seed.

Nothing heavy is imported here: torch, transformers, sklearn and spaCy load inside the functions that need them.
"""
