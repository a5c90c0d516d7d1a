"""The model card: MODEL_CARD.md in the model folder, what a reader needs before using the model.

Written from the files the workflow already has: the model's config.json, thresholds.json and
history.csv, the dataset manifest, the split (index.csv: modality, size and split of every
image) and the evaluation (summary.csv). It says what the model was trained on (source,
licence, images per modality and split), with which settings, on which device and for how long,
how it scores on held-out images, what it is for, and what it has not seen. It has a
"Validation" section, which bioimage.io asks of a model's documentation (model_zoo uses this
card as the package's documentation).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .io import atomic_path
from .manifest import Manifest
from .modelconfig import DECAY_FLOOR, HEAD_MAPS, ModelConfig
from .modelfolder import CONFIG_FILE, HISTORY_FILE, THRESHOLDS_FILE
from .normalize import MODALITIES
from .split import SPLITS
from .thresholds import load_thresholds

BBBC038_CITATION = (
    "Caicedo JC, Goodman A, Karhohs KW, et al. Nucleus segmentation across imaging experiments: "
    "the 2018 Data Science Bowl. Nature Methods 16, 1247-1253 (2019)")
BBBC038_DOI = "10.1038/s41592-019-0612-7"
# The data each dataset source gives (manifest.source), as the card names it.
_SOURCES = {
    "kaggle": "The 2018 Data Science Bowl's stage1_train (Kaggle), also published as BBBC038v1",
    "bbbc038": "BBBC038v1 (Broad Bioimage Benchmark Collection), the 2018 Data Science Bowl's "
               "stage1_train",
    "local": "A local copy of the 2018 Data Science Bowl's stage1_train (BBBC038v1)",
}
# A modality with a smaller share of the training images than this is called rare.
RARE_SHARE = 0.1
# The scores the card shows per modality: summary.csv column -> heading.
_SCORES = {"dsb_score": "DSB score", "ap_50": "AP at IoU 0.5", "ap_75": "AP at IoU 0.75",
           "dice": "foreground Dice"}
_SETS = {"test": "the test split (held out from training, same image collection)",
         "stage1_test": "Kaggle's stage1_test (the official held-out set)"}


def write_model_card(folder: str | Path, manifest_json: str | Path, index_csv: str | Path,
                     summary_csv: str | Path, out: str | Path,
                     training_seconds: float | None = None) -> str:
    """Write the card of the model in `folder` to `out`; return its text."""
    folder = Path(folder)
    config = ModelConfig.load(folder / CONFIG_FILE)
    manifest = Manifest.read(manifest_json)
    index = pd.read_csv(index_csv, dtype={"id": str})
    summary = pd.read_csv(summary_csv)
    history = pd.read_csv(folder / HISTORY_FILE)
    text = "\n".join([
        *_model_section(config, folder),
        *_data_section(manifest, index),
        *_training_section(config, history, training_seconds),
        *_validation_section(summary),
        *_use_section(manifest),
        *_limits_section(config, manifest, index),
    ])
    with atomic_path(out) as tmp:
        tmp.write_text(text)
    return text


def benchmark_seconds(path: str | Path) -> float | None:
    """The wall time a Snakemake benchmark file records (column s), or None without one."""
    path = Path(path)
    if not path.is_file():
        return None
    seconds = pd.read_csv(path, sep="\t").get("s")
    return float(seconds.iloc[0]) if seconds is not None and len(seconds) else None


def _model_section(config: ModelConfig, folder: Path) -> list[str]:
    thresholds = load_thresholds(folder / THRESHOLDS_FILE)
    maps = HEAD_MAPS[config.heads]
    band = (f" (a band of {config.contour_width} px along each nucleus edge)"
            if config.heads == "contour" else "")
    encoder = ("ImageNet-pretrained" if config.unet_encoder_weights != "none"
               else "randomly initialised")
    splitting = (f"seeds where foreground > {thresholds.foreground:g} and contour < "
                 f"{thresholds.contour:g}, grown by a watershed over the foreground"
                 if config.heads == "contour" else
                 f"connected components of foreground > {thresholds.foreground:g}")
    return [
        "# Nucleus segmentation model (nucleiseg)", "",
        f"A U-Net with a MobileNetV2 encoder (width {config.unet_alpha:g}, {encoder}; decoder "
        f"filters {', '.join(map(str, config.unet_decoder_filters))}) that maps a 2D microscopy "
        f"image to per-pixel probabilities of {' and '.join(maps)}, trained by nucleiseg "
        f"{config.nucleiseg_version}.", "",
        "- **Input:** (height, width, 3) float32, height and width multiples of 32; grayscale "
        "repeated to 3 channels. Each image is normalized on its own: its "
        f"percentile {config.norm_p_low:g} maps to 0 and its percentile {config.norm_p_high:g} to 1, "
        "over all channels together, without clipping (bioimage.io `scale_range`).",
        f"- **Output:** (height, width, {len(maps)}) probabilities: {', '.join(maps)}{band}.",
        f"- **Nuclei** (`{THRESHOLDS_FILE}`, chosen on the validation split): {splitting}; "
        f"objects under {thresholds.min_size} px are dropped.", "",
    ]


def split_counts(index: pd.DataFrame) -> pd.DataFrame:
    """Images per modality (rows, MODALITIES order first) and split (columns), with totals."""
    table = pd.crosstab(index["modality"], index["split"])
    table = table.reindex(columns=[s for s in SPLITS if s in table.columns], fill_value=0)
    order = [m for m in MODALITIES if m in table.index] + sorted(set(table.index) - set(MODALITIES))
    table = table.reindex(order)
    table["all"] = table.sum(axis=1)
    table.loc["all"] = table.sum(axis=0)
    return table


def _markdown(table: pd.DataFrame, first: str) -> list[str]:
    header = [first, *map(str, table.columns)]
    rows = [[str(row[0]), *map(_cell, row[1:])] for row in table.itertuples()]
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(row) + " |" for row in rows)]


def _cell(value) -> str:
    """Counts as whole numbers, scores with three decimals."""
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _span(values: pd.Series) -> str:
    low, high = values.min(), values.max()
    return str(low) if low == high else f"{low}-{high}"


def _data_section(manifest: Manifest, index: pd.DataFrame) -> list[str]:
    if manifest.source == "synthetic":
        source = [f"Synthetic nuclei generated by nucleiseg ({manifest.origin}), with exact "
                  "ground truth: made for the demo and the tests, not real microscopy."]
    else:
        source = [
            f"{_SOURCES.get(manifest.source, manifest.source)}, read from {manifest.origin}: "
            "annotated images of stained nuclei from many labs, microscopes and stains "
            "(fluorescence, brightfield, H&E-stained tissue). Licence: CC0 1.0 (public domain), "
            "Broad Bioimage Benchmark Collection.", "",
            f"Cite: {BBBC038_CITATION}, doi:{BBBC038_DOI}."]
    return [
        "## Training data", "", *source, "",
        f"Images per modality and split ({len(index)} images of {_span(index['height'])} x "
        f"{_span(index['width'])} px, height x width; split by a hash of the image ids, "
        "stratified by modality and size):", "",
        *_markdown(split_counts(index), "modality"), "",
    ]


def _training_section(config: ModelConfig, history: pd.DataFrame,
                      training_seconds: float | None) -> list[str]:
    best = int(history["val_loss"].idxmin()) + 1 if "val_loss" in history else len(history)
    scale = config.train_augment_scale
    augment = [name for name, on in (("flips", config.train_augment_flips),
                                     ("intensity", config.train_augment_intensity),
                                     ("colour", config.train_augment_colour),
                                     (f"zoom {scale[0]:g}-{scale[1]:g}", scale != (1.0, 1.0)))
               if on]
    device = config.train_device or "not recorded"
    if config.train_mixed_precision:
        device += ", mixed precision"
    steps = (f"{config.train_steps_per_epoch} steps" if config.train_steps_per_epoch
             else "one pass over the training tiles")
    duration = (f"{training_seconds / 60:.1f} min (the train_model job's wall time; a resumed "
                "training counts its last part only)" if training_seconds else "not recorded")
    frozen = (f"{config.train_epochs_frozen} with the encoder frozen, "
              if config.train_epochs_frozen else "")
    rates = (f"{config.train_learning_rate:g} with the encoder frozen, then "
             f"{config.train_finetune_learning_rate:g} for every layer"
             if config.train_epochs_frozen else
             f"{config.train_finetune_learning_rate:g} for every layer from the start")
    return [
        "## Training", "",
        f"- **Epochs:** {len(history)} run ({frozen}up to {config.train_epochs} in all), "
        f"{_kept_weights(config, best)}.",
        f"- **Steps:** {config.train_patches_per_step} patches of {config.train_patch_size} x "
        f"{config.train_patch_size} px per step, {steps} per epoch; BCE + Dice loss per map"
        f"{_touch(config)}.",
        f"- **Learning rate:** {rates}; {_rate_schedule(config)}, stopped after "
        f"{config.train_early_stopping_patience} epochs without improvement.",
        f"- **Augmentation:** {', '.join(augment) or 'none'}; seed {config.train_seed}.",
        f"- **Device:** {device}. **Training time:** {duration}.",
        f"- **Split:** sha256 {config.split_sha256 or 'not recorded'} (of split.csv).", "",
    ]


def _kept_weights(config: ModelConfig, best) -> str:
    if config.train_average_epochs:
        return (f"the mean of the last {config.train_average_epochs} epochs' weights kept "
                "(stochastic weight averaging)")
    return f"the weights of epoch {best} kept (lowest validation loss)"


def _touch(config: ModelConfig) -> str:
    if not config.train_touch_weight:
        return ""
    return (f", the contour's cross-entropy {1 + config.train_touch_weight:g} times as heavy "
            "where two nuclei touch")


def _rate_schedule(config: ModelConfig) -> str:
    if config.train_decay_epochs:
        return (f"falling along a cosine to {DECAY_FLOOR:.0%} of it over "
                f"{config.train_decay_epochs} epochs")
    return f"halved after {config.train_reduce_lr_patience} epochs without improvement"


def scores_table(summary: pd.DataFrame, set_name: str) -> pd.DataFrame:
    """The network's mean scores per modality on one held-out set, and the classical DSB score."""
    rows = summary[summary["set"] == set_name]
    network = rows[rows["method"] == "network"].set_index("modality")
    table = network[["n_images", *_SCORES]].rename(columns={"n_images": "images", **_SCORES})
    classical = rows[rows["method"] == "classical"].set_index("modality")["dsb_score"]
    table["classical DSB score"] = classical.reindex(table.index)
    return table


def _validation_section(summary: pd.DataFrame) -> list[str]:
    lines = [
        "## Validation", "",
        "Scores of the whole pipeline (network, thresholds, watershed) on images never used to "
        "train it or to choose its thresholds (`results/evaluation/summary.csv`). The DSB score "
        "is the 2018 Data Science Bowl's: the mean over IoU thresholds 0.5 to 0.95 of "
        "TP / (TP + FP + FN), per image, then averaged; the classical pipeline is Otsu + "
        "distance-transform watershed on the same images.", ""]
    for set_name in [s for s in _SETS if s in set(summary["set"])]:
        lines += [f"On {_SETS[set_name]}:", "", *_markdown(scores_table(summary, set_name),
                                                           "modality"), ""]
    return lines


def _use_section(manifest: Manifest) -> list[str]:
    if manifest.source == "synthetic":
        purpose = ("Showing the workflow run end to end (`make demo`) and testing it. Trained "
                   "on synthetic nuclei only: do not use it on real images.")
    else:
        purpose = ("Segmenting cell nuclei in 2D light-microscopy images like those of the 2018 "
                   "Data Science Bowl (fluorescent nuclear stains such as DAPI or Hoechst, "
                   "brightfield, H&E-stained tissue), for counting and per-nucleus measurements "
                   "in research. Not for diagnosis.")
    return [
        "## Intended use", "", purpose, "",
        "With nucleiseg, set `segment.model` to this folder (or a zip of it by address): it "
        "tiles images of any size, normalizes them as above, and applies the thresholds. The "
        "bioimage.io package (rule `export_model`) gives the probability maps to other tools; "
        "nuclei then need the thresholds and watershed above.", "",
    ]


def _modality_limits(index: pd.DataFrame) -> list[str]:
    counts = index.loc[index["split"] == "train", "modality"].value_counts()
    total = int(counts.sum())
    lines = []
    unseen = [m for m in MODALITIES if m not in counts.index]
    if unseen:
        lines.append(f"- **Modalities not in its training images:** {', '.join(unseen)}.")
    rare = [f"{m} ({counts[m]} of {total} training images)" for m in MODALITIES
            if m in counts.index and counts[m] < RARE_SHARE * total]
    if rare:
        lines.append(f"- **Rare in its training images:** {', '.join(rare)}: expect lower "
                     "scores there.")
    return lines


def _limits_section(config: ModelConfig, manifest: Manifest, index: pd.DataFrame) -> list[str]:
    train = index[index["split"] == "train"]
    nuclei = train["n_nuclei"] if "n_nuclei" in train else pd.Series(dtype=int)
    lines = ["## Limits: what it has not seen", "", *_modality_limits(index),
             "- **2D only:** one plane at a time; 3D stacks and time series are segmented plane "
             "by plane or as a projection.",
             f"- **Image and nucleus sizes:** trained on images of {_span(train['height'])} x "
             f"{_span(train['width'])} px"
             + (f" holding {_span(nuclei)} nuclei each" if len(nuclei) else "")
             + ". The network knows pixels, not micrometres: nuclei much larger or smaller in "
             "pixels than in its training images are split or missed; rescale such images.",
             "- **Normalization:** per image, so an image without nuclei has its noise "
             "stretched to the full range; the thresholds and `min_size` keep most of it out."]
    if manifest.source == "synthetic":
        lines.append("- **Real images:** none; its scores say nothing about real microscopy.")
    else:
        lines.append(
            "- **New acquisitions:** the test split comes from the same collection as the "
            "training images (same labs, microscopes and stains; split by image, not by "
            "experiment), so its scores are likely optimistic for images from elsewhere"
            + ("; stage1_test above is a fairer measure." if manifest.stage1_test else "."))
    return lines + [""]
