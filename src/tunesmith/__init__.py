"""tunesmith: from raw domain data to a fine-tuned, evaluated language model on your own machine."""

__version__ = "0.1.0"
