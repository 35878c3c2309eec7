"""One dataclass per stage. The docstring under each field is its documentation: `--help`, `tunesmith init`
and error messages are all generated from it, so keep it to one or two sentences.

Choices are written as `Literal[...]`; the loader checks them and the types, and `validate_config` checks the
rules that span fields. This module imports no torch so the CLI starts fast.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from tunesmith.config.adversarial_schema import AdversarialConfig
from tunesmith.config.audit_schema import AuditConfig
from tunesmith.config.augment_schema import AugmentConfig
from tunesmith.config.federated_schema import FederatedConfig
from tunesmith.config.launch_schema import LaunchConfig
from tunesmith.config.privacy_schema import PrivacyConfig
from tunesmith.config.search_schema import SearchConfig
from tunesmith.config.vet_schema import VetConfig

BUNDLED_MODEL = "bundled:smollm2-135m-instruct"
BUNDLED_DATA = "bundled:intent-recognition"


@dataclass
class RunConfig:
    """Where the run writes and how it is named."""

    output_dir: str = "runs"
    """Folder under which each run gets its own `<run-id>/` folder."""
    run_id: str | None = None
    """Run folder name; default is `<UTC timestamp>-<config hash>`. Reuse an id to resume that run."""
    seed: int = 0
    """Seed for splitting, shuffling, initialisation and dropout; the same seed gives the same run."""


@dataclass
class ModelConfig:
    """Which base model to fine-tune and where it runs."""

    source: str = BUNDLED_MODEL
    """`bundled:smollm2-135m-instruct`, a local Hugging Face folder, a `.gguf` file, or a hub id (needs network)."""
    revision: str | None = None
    """Hub revision (branch, tag or commit) when `source` is a hub id."""
    trust_remote_code: bool = False
    """Run model code shipped with the checkpoint. Off by default: only enable for sources you trust."""
    device: str = "auto"
    """`auto` picks CUDA > MPS > XLA > CPU; or name one: `cpu`, `cuda`, `cuda:1`, `mps`, `xla`."""
    precision: Literal["auto", "bf16", "fp16", "fp32"] = "auto"
    """Compute precision via autocast; weights stay fp32 (or 4-bit for QLoRA). `auto`: bf16 where supported."""
    cache_dir: str | None = None
    """Where converted GGUF models are cached as safetensors; default `$TUNESMITH_CACHE` or `~/.cache/tunesmith`."""
    num_threads: int | None = None
    """CPU threads for torch; default is the number of physical cores free to this process."""


@dataclass
class DataConfig:
    """Which records to train and evaluate on, and how they are split."""

    train_file: str = BUNDLED_DATA
    """JSONL (.gz too), JSON, CSV or Parquet file; or `bundled:intent-recognition` (the demo data)."""
    eval_file: str | None = None
    """Optional held-out file; when given, it is the test split and the train file is only split for validation."""
    format: Literal["auto", "messages", "sharegpt", "alpaca", "prompt_completion", "text_label", "pairs"] = "auto"
    """Record format; `auto` detects it from the fields of the first records."""
    val_fraction: float = 0.1
    """Share of records held out for validation loss during training (0 disables)."""
    test_fraction: float = 0.3
    """Share of records held out for the final evaluation (ignored when `eval_file` is set)."""
    stratify: bool = True
    """Keep label proportions equal across splits when records have labels."""
    max_records: int | None = None
    """Use only the first N records of the train file (quick trials)."""


@dataclass
class EncodeConfig:
    """How records become token ids: prompt wording, length limits, loss masking and packing."""

    max_seq_length: int = 512
    """Longest encoded example in tokens."""
    overlong: Literal["truncate", "drop", "error"] = "truncate"
    """What to do with examples longer than `max_seq_length`; every case is counted in the data report."""
    packing: bool = True
    """Pack several examples into one row with per-example position ids (no padding, no cross-example attention)."""
    system_prompt: str | None = None
    """System message added to records that have none."""
    label_prompt: str = "Classify the text into one of: {labels}.\nText: {text}\nAnswer with the label only."
    """User turn for text+label records; `{text}` and `{labels}` are filled in."""
    train_on_prompt: bool = False
    """Also put loss on prompt tokens; by default only assistant/completion tokens are learned."""


@dataclass
class AdapterConfig:
    """Parameter-efficient method (or full fine-tuning) applied to the base model."""

    method: Literal["lora", "dora", "ia3", "prefix", "qlora", "full"] = "lora"
    """`lora`, `dora`, `ia3`, `prefix` (via peft), `qlora` (CUDA + bitsandbytes) or `full` fine-tuning."""
    r: int = 16
    """LoRA/DoRA rank."""
    alpha: int = 32
    """LoRA/DoRA scaling numerator (scale = alpha / r)."""
    dropout: float = 0.0
    """Dropout on the LoRA input; 0 keeps training deterministic and fast."""
    target_modules: list[str] | None = None
    """Module names to adapt; default: every linear layer except the output head (detected from the model)."""
    num_virtual_tokens: int = 20
    """Prefix tuning: number of learned virtual tokens."""


@dataclass
class TrainConfig:
    """The optimisation loop."""

    strategy: str = "plain"
    """Training strategy plugged into the loop: `plain`, `dp` (DP-SGD, block `privacy:`), `adversarial`, `federated`."""
    learning_rate: float = 3e-4
    """Peak learning rate for AdamW."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    batch_size: int = 8
    """Examples per micro-batch (with packing: the token budget is batch_size * max_seq_length)."""
    grad_accum_steps: int = 1
    """Micro-batches per optimizer step."""
    epochs: float = 1.0
    """Passes over the training split; ignored when `max_steps` is set."""
    max_steps: int | None = None
    """Stop after this many optimizer steps."""
    warmup_steps: int | None = None
    """Linear warm-up steps; default 5% of the total."""
    schedule: Literal["cosine", "linear", "constant"] = "cosine"
    """Learning-rate decay after warm-up."""
    max_grad_norm: float | None = 1.0
    """Clip the gradient norm to this value; null disables clipping."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass: less memory, about 30% slower."""
    save_every_steps: int = 50
    """Write a checkpoint every N optimizer steps (and at the end)."""
    keep_checkpoints: int = 2
    """How many recent checkpoints to keep."""
    log_every_steps: int = 5
    """Append a line to metrics.jsonl every N optimizer steps."""
    eval_every_steps: int | None = None
    """Compute validation loss every N steps; default only at the end."""
    resume: Literal["auto", "never", "must"] = "auto"
    """`auto` continues from the newest complete checkpoint of the same run id; `must` fails without one."""


@dataclass
class EvalConfig:
    """The evaluation after training: base model and tuned model side by side."""

    compare_base: bool = True
    """Also evaluate the base model on the same split, printed side by side."""
    max_samples: int | None = None
    """Evaluate on at most this many test records."""
    max_new_tokens: int = 24
    """Longest generated answer."""
    batch_size: int = 16
    """Records per generation / scoring batch."""
    metrics: list[str] | None = None
    """Metric names; default: accuracy, macro/micro precision, recall, F1 for labels; chrF, BLEU, ROUGE, length and
    refusals for text (TER and exact match too for pairs); loss and perplexity always."""
    label_loglik: bool = True
    """For label data, also pick each answer as the label of highest log-likelihood (works for chatty models)."""
    bootstrap_samples: int = 1000
    """Paired bootstrap resamples (seeded by run.seed) for the confidence interval of each delta; 0 turns them off."""
    confidence: float = 0.95
    """Coverage of those intervals."""
    generalisation_samples: int = 64
    """Train and validation records (a seeded sample) also scored with the tuned model, for the gap; 0 skips."""
    review_samples: int = 20
    """Test examples in the report's review table, biggest wins and losses first (mark them in review_marks.json)."""
    robustness: list[str] = field(
        default_factory=lambda: ["typos", "deletion", "swap", "synonyms", "case", "whitespace"]
    )
    """Perturbations of the test inputs the tuned model is evaluated under again; [] skips the robustness check."""
    robustness_samples: int = 64
    """Test records (a seeded sample) scored under each perturbation."""
    robustness_rate: float = 0.1
    """Share of words (or characters, for case noise) each perturbation changes."""
    counterfactual: bool = True
    """For label data, swap names, gendered words and nationalities in the inputs and report how often labels flip."""
    report_html: bool = True
    """Write a self-contained report.html (plots inline, no external links) into the run folder."""


@dataclass
class TrackConfig:
    """Where a run is mirrored besides its run folder (the folder is always the record; trackers copy it)."""

    trackers: list[str] = field(default_factory=lambda: ["run_dir"])
    """Trackers the run folder is mirrored into: `run_dir` (always), `mlflow`, `tensorboard`, `wandb` (extras)."""
    mlflow_uri: str | None = None
    """MLflow tracking URI; default a local SQLite store `<run.output_dir>/mlflow.db` (browse: `mlflow ui`)."""
    mlflow_experiment: str = "tunesmith"
    """MLflow experiment the runs are recorded under."""
    tensorboard_dir: str | None = None
    """Folder for TensorBoard event files; default `<run folder>/tensorboard`."""
    wandb_project: str = "tunesmith"
    """Weights & Biases project name."""
    wandb_mode: Literal["offline", "online"] = "offline"
    """`offline` writes under `<run folder>/wandb` and needs no account (upload later with `wandb sync`)."""


@dataclass
class Config:
    """A whole run: one YAML file, one section per stage."""

    run: RunConfig = field(default_factory=RunConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    vet: VetConfig = field(default_factory=VetConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    encode: EncodeConfig = field(default_factory=EncodeConfig)
    adapter: AdapterConfig = field(default_factory=AdapterConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    track: TrackConfig = field(default_factory=TrackConfig)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    audit: AuditConfig = field(default_factory=AuditConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    adversarial: AdversarialConfig = field(default_factory=AdversarialConfig)
    federated: FederatedConfig = field(default_factory=FederatedConfig)
    launch: LaunchConfig = field(default_factory=LaunchConfig)
