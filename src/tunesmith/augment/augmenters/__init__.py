"""The built-in augmenters; importing this package registers them in `augment.base.AUGMENTERS`."""

from tunesmith.augment.augmenters import (  # noqa: F401
    back_translation,
    char_noise,
    delete,
    insert,
    paraphrase,
    swap,
    synonym,
    synthetic,
)
