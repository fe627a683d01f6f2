"""Training: ``roomkit train`` — fit the network to annotated plans, export ONNX, write model.json.

JAX + optax (the ``roomkit[train]`` extra) on the CPU, or a GPU when JAX finds one. Runs are
deterministic for a seed on one machine, checkpoint every epoch and resume from the checkpoint
when re-run with the same output folder. The exported ``model.onnx`` holds the weights after the
last epoch (``keep="last"``: reproducible whatever the validation code) or those of the epoch
with the best validation F1@0.5 (``keep="best"``).
"""
from __future__ import annotations

import json
import pickle
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from roomkit.errors import InputError
from roomkit.learned import data as ds
from roomkit.learned.modelfile import CLASSES, ONNX_NAME, ModelInfo, read_info

CHECKPOINT = "checkpoint.pkl"
CURVE = "training_curve.png"
HISTORY = "history.json"


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of a run (recorded in ``model.json``)."""

    channels: tuple[int, ...] = (8, 16, 32, 64, 96)
    max_side: int = 768
    crop: int = 256
    batch: int = 8
    steps_per_epoch: int = 50
    epochs: int | None = None
    minutes: float | None = None
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    class_weights: tuple[float, ...] = (1.0, 3.0, 6.0, 1.0)
    sides: tuple[int, int] = (320, 768)  # longer side each plan is prepared at
    synthetic: int = 0
    synth_styles: tuple[str, ...] = ()
    validation_share: float = 0.15
    seed: int = 0
    augment: float = 1.0
    keep: str = "last"  # which weights model.onnx gets: "last" epoch or "best" validation F1

    def __post_init__(self) -> None:
        if self.keep not in ("last", "best"):
            raise InputError(f"keep must be 'last' or 'best', got {self.keep!r}")
        if (self.epochs is None) == (self.minutes is None):
            raise InputError("give exactly one of epochs and minutes")
        if self.epochs is not None and self.epochs < 1:
            raise InputError("epochs must be >= 1")
        if self.minutes is not None and not self.minutes > 0:
            raise InputError("minutes must be > 0")
        if not 2 <= len(self.channels) <= 6:
            raise InputError("channels needs 2 to 6 levels")
        if self.crop % self.multiple or self.crop < 2 * self.multiple:
            raise InputError(f"crop must be a multiple of {self.multiple}, at least {2 * self.multiple}")

    @property
    def multiple(self) -> int:
        """Input sides must be multiples of this (2 ** poolings)."""
        return 2 ** (len(self.channels) - 1)


@dataclass
class TrainResult:
    model_dir: Path
    epochs: int
    steps: int
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = 0
    best_f1: float | None = None
    seconds: float = 0.0


def _loss_fn(class_weights: Sequence[float]) -> Callable:
    import jax
    import jax.numpy as jnp

    from roomkit.learned.net import apply

    w = jnp.asarray(class_weights, jnp.float32)

    def loss(params: Any, x: Any, y: Any) -> Any:
        logits = apply(params, x)  # (N, C, H, W)
        logp = jax.nn.log_softmax(logits, axis=1)
        onehot = jax.nn.one_hot(y, len(class_weights), axis=1)
        pix_w = w[y]
        return -(jnp.sum(onehot * logp, axis=1) * pix_w).sum() / pix_w.sum()

    return loss


def _validate(params: Any, examples: Sequence[ds.Example], min_area_share: float = 0.0005) -> dict[str, Any]:
    """F1@0.5 / precision / recall / mIoU of the learned backend on held-out examples."""
    import jax

    from roomkit.learned.instances import room_pieces
    from roomkit.learned.net import poolings as net_poolings
    from roomkit.learned.net import probabilities
    from roomkit.learned.runtime import to_input
    from roomkit.plans.response import Detection, order_and_number
    from roomkit.qa.evaluate import score_plan, summarize

    fwd = jax.jit(probabilities)
    scores = []
    pix_ok = pix_n = 0
    # One padded size for every plan: one compilation instead of one per plan shape.
    side = max(max(ex.gray.shape) for ex in examples)
    side += (-side) % (2 ** net_poolings(params))
    for ex in examples:
        h, w = ex.gray.shape
        x = np.zeros((1, 1, side, side), np.float32)
        x[0, 0, :h, :w] = to_input(ex.gray)
        probs = np.asarray(fwd(params, x))[0, :, :h, :w]
        pix_ok += int((probs.argmax(0) == ex.target).sum())
        pix_n += ex.target.size
        pieces = room_pieces(probs, min_area=min_area_share * h * w, max_area=0.9 * h * w, simplify=1.0)
        items = [([(float(a) / ex.scale, float(b) / ex.scale) for a, b in p.polygon], p.area / ex.scale**2, p.confidence)
                 for p in pieces if p.confidence >= 0.5]
        det = Detection(width=ex.truth.width, height=ex.truth.height, rooms=order_and_number(items))
        scores.append(score_plan(det, ex.truth, name=ex.name))
    s = summarize(scores)
    return {"f1": s.f1(0.5), "precision": s.precision(0.5), "recall": s.recall(0.5),
            "miou": s.mean_iou, "pixel_accuracy": pix_ok / max(1, pix_n), "plans": len(examples)}


def _flat(tree: Any) -> Any:
    import jax

    return jax.tree_util.tree_map(np.asarray, tree)


def train(
    data_dirs: Sequence[str | Path],
    out: str | Path,
    config: TrainConfig,
    *,
    base: str | Path | None = None,
    restart: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> TrainResult:
    """Train on ``data_dirs`` (plans + ground-truth JSON) and ``config.synthetic`` synthetic plans.

    ``base``: a model directory whose weights start the run (fine-tuning; its ``model.json``
    fixes the channels and working size). Writes ``model.onnx``, ``model.json``,
    ``training_curve.png``, ``history.json`` and ``checkpoint.pkl`` (resumed unless ``restart``)
    into ``out``.
    """
    import jax
    import optax
    from tqdm.auto import tqdm

    from roomkit.learned import net
    from roomkit.learned.export import check_parity, write_onnx

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    rng = np.random.default_rng(config.seed)
    base_params = None
    if base is not None:
        info = read_info(base)
        base_params = _params_from_onnx(Path(base) / ONNX_NAME)
        config = replace(config, channels=tuple(info.channels), max_side=info.max_side)
    if not data_dirs and config.synthetic <= 0:
        raise InputError("nothing to train on: give annotated plan folders and/or --synthetic N")
    # -- data: the user's plans and synthetic ones, split into training / validation ----------
    plans = ds.read_dirs(data_dirs) if data_dirs else []
    real_n = len(plans)
    order = rng.permutation(real_n)
    n_val = int(round(config.validation_share * real_n)) if real_n >= 4 else 0
    val_plans = [plans[i] for i in order[:n_val]]
    train_plans = [plans[i] for i in order[n_val:]]
    synth_plans = list(ds.synthetic(config.synthetic, config.seed, config.synth_styles or None)) if config.synthetic else []
    n_sval = int(round(config.validation_share * len(synth_plans))) if not val_plans else 0
    val_plans += synth_plans[:n_sval]
    train_plans += synth_plans[n_sval:]
    if not train_plans:
        raise InputError("too few plans to train on: need at least one besides the validation share")
    log(f"preparing {len(train_plans)} training and {len(val_plans)} validation plans …")
    train_ex = ds.prepare_all(train_plans, config.sides, rng)
    val_ex = [ds.prepare_example(p, min(config.max_side, max(config.sides))) for p in val_plans]
    del plans, synth_plans, train_plans, val_plans
    # -- model and optimiser -------------------------------------------------------------------
    params = base_params if base_params is not None else net.init_params(config.seed, config.channels, len(CLASSES))
    total_steps = (config.epochs or 10_000) * config.steps_per_epoch
    if config.epochs is not None:  # warm up for a tenth of the run, then cosine decay to 5 %
        warmup = min(200, total_steps // 10 + 1)
        schedule = optax.warmup_cosine_decay_schedule(
            0.0, config.learning_rate, warmup, max(total_steps, warmup + 1), config.learning_rate * 0.05)
    else:  # a time budget: the number of steps is not known, so warm up over half an epoch, then hold
        warmup = min(200, config.steps_per_epoch // 2 + 1)
        schedule = optax.join_schedules(
            [optax.linear_schedule(0.0, config.learning_rate, warmup), optax.constant_schedule(config.learning_rate)],
            [warmup])
    opt = optax.adamw(schedule, weight_decay=config.weight_decay)
    opt_state = opt.init(params)
    loss = _loss_fn(config.class_weights)

    @jax.jit
    def step(params: Any, opt_state: Any, x: Any, y: Any) -> Any:
        value, grads = jax.value_and_grad(loss)(params, x, y)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, value

    history: list[dict[str, Any]] = []
    epoch = 0
    best = (-1.0, 0, params)
    ck = out / CHECKPOINT
    if ck.exists() and not restart:
        state = pickle.loads(ck.read_bytes())
        # Which weights are exported does not change the run: a checkpoint resumes either way.
        if _run_settings(state["config"]) != _run_settings(asdict(config)):
            raise InputError(f"{ck} was written by a run with other settings; pass --restart to discard it")
        params, opt_state, history, epoch = state["params"], state["opt_state"], state["history"], state["epoch"]
        best = (state["best_f1"], state["best_epoch"], state["best_params"])
        rng.bit_generator.state = state["rng"]
        if history:  # time already spent counts toward --minutes and the recorded training time
            started = time.perf_counter() - float(history[-1]["seconds"])
        log(f"resuming from {ck} after epoch {epoch}")
    deadline = None if config.minutes is None else started + 60.0 * config.minutes
    steps_done = epoch * config.steps_per_epoch
    while True:
        if config.epochs is not None and epoch >= config.epochs:
            break
        if deadline is not None and time.perf_counter() >= deadline and epoch > 0:
            break
        if steps_done >= total_steps:
            break
        losses = []
        bar = tqdm(range(config.steps_per_epoch), desc=f"epoch {epoch + 1}", disable=not progress, leave=False)
        for _ in bar:
            x, y = ds.batch(train_ex, config.crop, config.batch, rng, config.augment)
            params, opt_state, value = step(params, opt_state, x, y)
            losses.append(float(value))
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
        steps_done += config.steps_per_epoch
        epoch += 1
        val = _validate(params, val_ex) if val_ex else {}
        row = {"epoch": epoch, "steps": steps_done, "loss": float(np.mean(losses)),
               "seconds": round(time.perf_counter() - started, 1), **{f"val_{k}": v for k, v in val.items()}}
        history.append(row)
        f1 = val.get("f1", -float(np.mean(losses)))
        if f1 >= best[0]:
            best = (f1, epoch, params)
        log(f"epoch {epoch}: loss {row['loss']:.4f}" + (f", validation F1@0.5 {val['f1']:.3f} (P {val['precision']:.3f}, "
            f"R {val['recall']:.3f}), pixel accuracy {val['pixel_accuracy']:.3f}" if val else ""))
        ck_tmp = ck.with_suffix(".tmp")
        ck_tmp.write_bytes(pickle.dumps({
            "config": asdict(config), "params": _flat(params), "opt_state": _flat(opt_state), "history": history,
            "epoch": epoch, "best_f1": best[0], "best_epoch": best[1], "best_params": _flat(best[2]),
            "rng": rng.bit_generator.state}))
        ck_tmp.replace(ck)
    # -- export the kept epoch -----------------------------------------------------------------
    best_f1, best_epoch, best_params = best
    if config.keep == "last":
        best_epoch, best_params = epoch, params
        best_f1 = next((h.get("val_f1", -1.0) for h in history if h["epoch"] == epoch), -1.0)
    write_onnx(best_params, len(CLASSES), out / ONNX_NAME, doc="roomkit room segmentation (outside, wall, opening, room)")
    probe = np.random.default_rng(0).random((1, 1, 4 * config.multiple, 3 * config.multiple), dtype=np.float32)
    parity = check_parity(best_params, out / ONNX_NAME, probe)
    chosen = next((h for h in history if h["epoch"] == best_epoch), {})
    info = ModelInfo(
        max_side=config.max_side, multiple=config.multiple, channels=tuple(config.channels),
        trained_on={
            "annotated_plans": real_n, "annotated_dirs": [str(d) for d in data_dirs],
            "synthetic_plans": config.synthetic, "synthetic_seed": config.seed,
            "base_model": str(base) if base else None,
            "real_plans_dev": any("real-plans-dev" in str(Path(d).resolve()) for d in data_dirs),
        },
        validation={k[4:]: v for k, v in chosen.items() if k.startswith("val_")} | {"epoch": best_epoch},
        training={**{k: v for k, v in asdict(config).items()}, "epochs_run": epoch, "steps": steps_done,
                  "seconds": round(time.perf_counter() - started, 1), "onnx_parity_max_abs": parity,
                  "device": str(jax.devices()[0].platform)},
    )
    info.write(out)
    (out / HISTORY).write_text(json.dumps(history, indent=2) + "\n", encoding="utf-8")
    plot_curve(history, out / CURVE)
    return TrainResult(out, epoch, steps_done, history, best_epoch, None if best_f1 < 0 else best_f1,
                       time.perf_counter() - started)


def _run_settings(settings: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in settings.items() if k != "keep"}


def plot_curve(history: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Training loss and validation F1 per epoch, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    ep = [h["epoch"] for h in history]
    ax.plot(ep, [h["loss"] for h in history], color="tab:blue", label="training loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss", color="tab:blue")
    if history and "val_f1" in history[0]:
        ax2 = ax.twinx()
        ax2.plot(ep, [h["val_f1"] for h in history], color="tab:red", label="validation F1@0.5")
        ax2.set_ylabel("validation F1@0.5", color="tab:red")
        ax2.set_ylim(0, 1)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def _params_from_onnx(path: Path) -> dict[str, Any]:
    """The weights of an exported model (to fine-tune it), as JAX arrays."""
    import jax.numpy as jnp

    from roomkit.learned.export import read_params

    return {layer: {k: jnp.asarray(v) for k, v in p.items()} for layer, p in read_params(path).items()}
