"""A batch's tables and figures, gathered from its jobs: what users open first.

nuclei.csv: every nucleus (measure.nuclei_columns). images.csv: one row per segmented image,
with summaries of its nuclei and the seconds each stage took. skipped.csv: the files left out,
with the reason. montage.png: outlines on the first images; distributions.png: histograms of
the main measurements over the batch.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from .io import new_figure, save_figure, write_csv
from .measure import nuclei_columns
from .tables import IMAGES_COLUMNS, SKIPPED_COLUMNS

log = logging.getLogger(__name__)


def read_tables(paths: list[str | Path], columns: list[str] | None = None) -> pd.DataFrame:
    frames = [pd.read_csv(p, dtype={"image_id": str}) for p in paths]
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)


def image_summaries(nuclei: pd.DataFrame) -> pd.DataFrame:
    """Per image id: counts, areas, intensity and confidence of its nuclei."""
    grouped = nuclei.groupby("image_id")
    return pd.DataFrame({
        "n_nuclei": grouped.size(),
        "n_touching_border": grouped["touches_border"].sum(),
        "area_sum": grouped["AreaShape_Area"].sum(),
        "mean_area": grouped["AreaShape_Area"].mean(),
        "median_area": grouped["AreaShape_Area"].median(),
        "mean_area_um2": grouped["AreaShape_Area_um2"].mean(),
        "median_area_um2": grouped["AreaShape_Area_um2"].median(),
        "mean_intensity": grouped["Intensity_MeanIntensity"].mean(),
        "mean_confidence": grouped["confidence"].mean(),
    })


def images_table(segmented: pd.DataFrame, nuclei: pd.DataFrame,
                 timings: pd.DataFrame) -> pd.DataFrame:
    """One row per segmented image: its file and size, SUMMARY_COLUMNS, seconds per stage."""
    ok = segmented[segmented["status"] == "ok"].drop(columns=["status", "reason", "n_nuclei"])
    summary = image_summaries(nuclei)
    table = ok.merge(summary, left_on="image_id", right_index=True, how="left")
    table = table.merge(timings, on="image_id", how="left")
    counts = ["n_nuclei", "n_touching_border"]
    table[counts] = table[counts].fillna(0).astype(int)  # an image without nuclei: zeros
    # Skipped rows had no size, which made these columns float in the chunk tables.
    table[["height", "width"]] = table[["height", "width"]].astype(int)
    table["coverage"] = table.pop("area_sum").fillna(0) / (table["height"] * table["width"])
    return table[list(IMAGES_COLUMNS)]


def skipped_table(segmented: pd.DataFrame) -> pd.DataFrame:
    return segmented.loc[segmented["status"] == "skipped", list(SKIPPED_COLUMNS)]


def write_batch_tables(segmented: pd.DataFrame, nuclei: pd.DataFrame, timings: pd.DataFrame,
                       nuclei_csv: Path, images_csv: Path, skipped_csv: Path) -> pd.DataFrame:
    nuclei = nuclei.reindex(columns=nuclei_columns())
    images = images_table(segmented, nuclei, timings)
    write_csv(nuclei, nuclei_csv)
    write_csv(images, images_csv)
    write_csv(skipped_table(segmented), skipped_csv)
    return images


def plot_montage(images: pd.DataFrame, overlay_dirs: list[Path], path: Path, count: int) -> None:
    """The outlines of the first `count` images (by id), each titled with its nucleus count."""
    import imageio.v3 as iio

    overlays = {p.stem: p for folder in overlay_dirs for p in Path(folder).glob("*.png")}
    shown = images.sort_values("image_id").head(count)
    shown = shown[shown["image_id"].isin(overlays)]
    columns = max(1, min(4, len(shown)))
    rows = max(1, -(-len(shown) // columns))
    fig, axes = new_figure(rows, columns, (4 * columns, 4 * rows))
    for ax in axes.ravel():
        ax.axis("off")
    for ax, row in zip(axes.ravel(), shown.itertuples()):
        ax.imshow(iio.imread(overlays[row.image_id]))
        noun = "nucleus" if row.n_nuclei == 1 else "nuclei"
        ax.set_title(f"{row.image_id[:28]}\n{row.n_nuclei} {noun} "
                     f"({row.n_touching_border} at the border)", fontsize=9)
    if shown.empty:
        axes[0, 0].text(0.5, 0.5, "no image was segmented", ha="center", va="center")
    save_figure(fig, path)


def plot_distributions(nuclei: pd.DataFrame, images: pd.DataFrame, path: Path) -> None:
    """Histograms: area, form factor, eccentricity, mean intensity, confidence, nuclei/image."""
    physical = len(nuclei) > 0 and nuclei["AreaShape_Area_um2"].notna().all()
    area = ("AreaShape_Area_um2", "area (um^2)") if physical else ("AreaShape_Area", "area (px)")
    panels = [
        (nuclei[area[0]], area[1]),
        (nuclei["AreaShape_FormFactor"], "form factor 4*pi*A/P^2"),
        (nuclei["AreaShape_Eccentricity"], "eccentricity"),
        (nuclei["Intensity_MeanIntensity"], "mean intensity (raw units)"),
        (nuclei["confidence"], "model confidence"),
        (images["n_nuclei"], "nuclei per image"),
    ]
    fig, axes = new_figure(2, 3, (13, 7))
    for ax, (values, title) in zip(axes.ravel(), panels):
        values = pd.to_numeric(values, errors="coerce")
        values = values[np.isfinite(values)]  # FormFactor is inf for 1-2 pixel nuclei
        if len(values):
            ax.hist(values, bins=min(40, max(5, int(np.sqrt(len(values))))), color="#4477aa")
        ax.set(title=f"{title} (n={len(values)})", ylabel="count")
        ax.grid(alpha=0.3)
    save_figure(fig, path)
