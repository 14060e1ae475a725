"""Crop replay: the faces the faces bench finds, recorded once (box, landmarks, truth), so that ways of cutting them
into the model's 48x48 crops are compared in seconds instead of a scan of every frame per way.

`record` scans the faces bench's frames for some seeds (`faces.run_faces_bench`'s draw: the same frames, the finder
of each frame's camera kind, `face_matches`) and the faces-wild photos it draws (the room finder, the largest face);
`compare` draws the frames again (they are made from the seed, nothing is stored), cuts each found face with every
candidate crop method and scores the served model on the crops: per family, per face size and per seed, each
against the shipped crop (paired standard error) and against the same faces' FER2013 crops.

    python -m classpulse_bench crops --seeds 20,21,19 --frames 24 --wild-sample 600
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from classpulse_bench.candidate_replay import SavedColumns
from classpulse_bench.face_layouts import PlacedFace, families, family_frames, frame_alignment
from classpulse_bench.faces import REPO_ROOT, SIDE_BINS, FacesBenchResult, _detectors, _wild_photos, face_matches
from classpulse_bench.report import Section

WILD_FAMILY = "faces-wild"
RECORDINGS = REPO_ROOT / ".cache" / "crops"
"""Where the found faces are kept between runs (a scan of every frame is minutes; drawing them again is seconds)."""
FRAME_CROPS = "frame crops"
"""`crops_by_method`'s key for the generated faces' frame crops."""
FRAMING_SWAPS = {
    "frame crops, the landmarks' scale": ("scale",),
    "frame crops, the landmarks' turn": ("angle",),
    "frame crops, the landmarks' centre": ("centre",),
}
"""The frame crop with one part of its cut (`Alignment`) taken from the found landmarks' (`blazeface.alignment` on
FER_FRAMING): which part of FER2013's own framing of a face the landmarks do not give back."""

CropMethod = Callable[[np.ndarray, object], np.ndarray]
"""(gray frame, found face as the finder returned it) -> 48x48 uint8 crop."""


@dataclass
class FoundFaces(SavedColumns):
    """Faces [N] the finders found and matched to a drawn face (or a faces-wild photo's largest face)."""

    family: np.ndarray  # [N] str
    seed: np.ndarray  # [N]
    frame: np.ndarray  # [N] frame number in its family's draw (photo number in the faces-wild draw)
    kind: np.ndarray  # [N] str: the camera kind whose finder found it
    box: np.ndarray  # [N, 4] x, y, w, h
    landmarks: np.ndarray  # [N, 6, 2] relative to the box's corner
    label: np.ndarray  # [N]
    index: np.ndarray  # [N] PublicTest index of the drawn face (-1: a faces-wild photo)


def record(
    images: np.ndarray, labels: np.ndarray, seed: int, frames: int, wild_sample: int = 0,
    family_names: list[str] | None = None,
) -> FoundFaces:
    """Every matched face with landmarks of `frames` frames a family (every family, or `family_names`) for `seed`,
    or (`wild_sample`) the largest face of each faces-wild photo drawn for `seed`."""
    finders = _detectors(["blazeface"])["blazeface"]
    columns: dict[str, list] = {name: [] for name in FoundFaces.__dataclass_fields__}

    def add(family: str, number: int, kind: str, face, label: int, index: int) -> None:
        for name, value in zip(
            columns, (family, seed, number, kind, tuple(face), face.landmarks, label, index), strict=True
        ):
            columns[name].append(value)

    for family in [] if wild_sample else family_names or families():
        for number, frame in enumerate(family_frames(images, family, frames, seed)):
            boxes = finders[frame.camera_kind].detect(frame.gray)  # type: ignore[attr-defined]
            for truth, found in face_matches([face.box for face in frame.faces], boxes).items():
                if getattr(boxes[found], "landmarks", None) is not None:
                    index = frame.faces[truth].index
                    add(family, number, frame.camera_kind, boxes[found], int(labels[index]), index)
    for number, (path, label) in enumerate(_wild_photos(wild_sample, seed) if wild_sample else []):
        boxes = finders["room"].detect(cv2.imread(str(path), cv2.IMREAD_GRAYSCALE))  # type: ignore[attr-defined]
        landmarked = [box for box in boxes if getattr(box, "landmarks", None) is not None]
        if landmarked:
            add(WILD_FAMILY, number, "room", max(landmarked, key=lambda box: box[2] * box[3]), label, -1)
    return FoundFaces(**{name: np.array(values) for name, values in columns.items()})


def recorded(images: np.ndarray, labels: np.ndarray, seeds: list[int], frames: int, wild_sample: int) -> FoundFaces:
    """The found faces of each seed's frames and of the faces-wild photos drawn for the last seed, each recorded
    once under RECORDINGS (a scan of every frame takes minutes on a busy machine; drawing them again, seconds)."""
    parts = []
    for name, seed, sample in [*((f"seed{seed}-frames{frames}", seed, 0) for seed in seeds),
                               *([(f"wild{wild_sample}-seed{seeds[-1]}", seeds[-1], wild_sample)] if wild_sample else [])]:
        path = RECORDINGS / f"found-{name}.npz"
        if not path.is_file():
            record(images, labels, seed, frames, sample).save(path)
        parts.append(FoundFaces.load(path))
    return FoundFaces(**{
        name: np.concatenate([getattr(part, name) for part in parts]) for name in FoundFaces.__dataclass_fields__
    })


def frames_again(
    found: FoundFaces, images: np.ndarray, wild_sample: int
) -> Iterator[tuple[np.ndarray, np.ndarray, dict[int, PlacedFace]]]:
    """(gray frame, indices of `found` in it, its drawn faces by image index: none for a photo) for every frame or
    photo that holds a recorded face, drawn again."""
    for seed in np.unique(found.seed):
        for family in np.unique(found.family[found.seed == seed]):
            mine = np.flatnonzero((found.seed == seed) & (found.family == family))
            if family == WILD_FAMILY:
                photos = _wild_photos(wild_sample, int(seed))
                drawn: Iterator = (
                    (cv2.imread(str(photos[number][0]), cv2.IMREAD_GRAYSCALE), {})
                    for number in np.unique(found.frame[mine])
                )
                numbers = np.unique(found.frame[mine])
            else:
                numbers = np.arange(found.frame[mine].max() + 1)
                drawn = (
                    (frame.gray, {face.index: face for face in frame.faces})
                    for frame in family_frames(images, str(family), len(numbers), int(seed))
                )
            for number, (gray, faces) in zip(numbers, drawn, strict=True):
                yield gray, mine[found.frame[mine] == number], faces


def face_at(found: FoundFaces, row: int):
    """The recorded face as the finder returned it (a box carrying its landmarks)."""
    from classpulse_detector.faces import Face

    return Face(tuple(int(v) for v in found.box[row]), found.landmarks[row].astype(np.float32))


@dataclass
class ReplayedCrops:
    """What `crops_by_method` cut from the recorded faces' frames drawn again."""

    crops: dict[str, np.ndarray]
    """Each method's crops [N, 48, 48]; under FRAME_CROPS and FRAMING_SWAPS, the generated faces' (a photo's row
    left blank)."""
    cpu_ms: dict[str, float]
    """Each method's CPU ms a crop."""
    scale_ratio: np.ndarray
    """[N] the landmarks' scale over the frame crop's: under 1, the aligned crop frames the face looser than FER2013
    did (NaN for a photo or degenerate landmarks)."""


def crops_by_method(
    found: FoundFaces, images: np.ndarray, wild_sample: int, methods: dict[str, CropMethod]
) -> ReplayedCrops:
    """Each method's crops of the found faces; each generated face's frame crop (`face_layouts.frame_alignment`: its
    true box, upright) and the frame crops with a part of the cut swapped for the landmarks' (FRAMING_SWAPS)."""
    import time

    from classpulse_detector.blazeface import FER_FRAMING, alignment
    from classpulse_detector.faces import landmarks_of

    crops = {name: np.zeros((len(found.label), 48, 48), np.uint8) for name in [*methods, FRAME_CROPS, *FRAMING_SWAPS]}
    seconds = dict.fromkeys(methods, 0.0)
    scale_ratio = np.full(len(found.label), np.nan)
    for gray, rows, drawn in frames_again(found, images, wild_sample):
        for row in rows:
            face = face_at(found, int(row))
            if drawn:
                truth = frame_alignment(drawn[int(found.index[row])])
                crops[FRAME_CROPS][row] = truth.crop(gray)
                try:
                    landmarks = alignment(landmarks_of(face), FER_FRAMING).centred()
                except ValueError:
                    landmarks = truth  # degenerate landmarks: the crop is cut by the box, nothing to swap
                else:
                    scale_ratio[row] = landmarks.scale / truth.scale
                for name, parts in FRAMING_SWAPS.items():
                    crops[name][row] = dataclasses.replace(truth, **{part: getattr(landmarks, part) for part in parts}).crop(gray)
            for name, method in methods.items():
                started = time.process_time()
                crops[name][row] = method(gray, face)
                seconds[name] += time.process_time() - started
    cpu_ms = {name: round(1000 * spent / max(len(found.label), 1), 3) for name, spent in seconds.items()}
    return ReplayedCrops(crops, cpu_ms, scale_ratio)


def _figure(hits: np.ndarray, baseline: np.ndarray | None) -> str:
    """Accuracy, and the points gained over the baseline on the same faces +- the paired standard error."""
    if not len(hits):
        return "-"
    if baseline is None or len(hits) < 2:
        return f"{hits.mean():.3f}"
    change = hits.astype(float) - baseline
    return f"{hits.mean():.3f} ({100 * change.mean():+.1f} +- {100 * change.std(ddof=1) / math.sqrt(len(change)):.1f})"


def compare(
    found: FoundFaces, images: np.ndarray, predict: Callable[[np.ndarray], np.ndarray], wild_sample: int,
    methods: dict[str, CropMethod], baseline: str,
) -> list[Section]:
    """Accuracy of each method's crops per family and per face size, with the points it gains over the baseline's
    crops of the same faces: for the tuning seeds (all but the last) together, then for the last (held out)."""
    replayed = crops_by_method(found, images, wild_sample, methods)
    hits = {name: predict(replayed.crops[name][..., None]).argmax(1) == found.label for name in methods}
    generated = found.index >= 0
    data_set = np.zeros(len(found.label), bool)
    data_set[generated] = predict(images[found.index[generated]][..., None]).argmax(1) == found.label[generated]
    framed = {name: np.zeros(len(found.label), bool) for name in [FRAME_CROPS, *FRAMING_SWAPS]}
    for name, right in framed.items():
        right[generated] = predict(replayed.crops[name][generated][..., None]).argmax(1) == found.label[generated]
    side = found.box[:, 2]
    columns = {family: found.family == family for family in [*families(), WILD_FAMILY]} | {
        f"side {low}-{high}": generated & (side >= low) & (side < high) for low, high in zip(SIDE_BINS, SIDE_BINS[1:], strict=False)
    }
    seeds = [int(seed) for seed in dict.fromkeys(found.seed)]
    sections = []
    for title, chosen in [(f"tuning seeds {seeds[:-1]}", np.isin(found.seed, seeds[:-1])), (f"held-out seed {seeds[-1]}", found.seed == seeds[-1])]:
        if not chosen.any():
            continue
        section = Section(
            f"Accuracy by crop method, {title}",
            note=f"served model on each method's crops of the same found faces; (points over {baseline} +- paired "
            "standard error); side: the detector's box, frame px; FER2013 crops: the same faces as the data set crops "
            "them; frame crops: their true box cut from the frame, upright (the frame's own losses, none of the "
            "pipeline's); frame crops, the landmarks' scale / turn / centre: that part of the cut taken from the found "
            "landmarks' alignment instead (points over frame crops)",
        )
        faces = {column: int((mask & chosen).sum()) for column, mask in columns.items()}
        section.add("faces", **faces)
        section.add("FER2013 crops", **{
            column: _figure(data_set[mask & chosen], None) if column != WILD_FAMILY else "-" for column, mask in columns.items()
        })
        for name, right in framed.items():
            reference = None if name == FRAME_CROPS else framed[FRAME_CROPS]
            section.add(name, **{
                column: _figure(right[mask & chosen], None if reference is None else reference[mask & chosen])
                if column != WILD_FAMILY else "-" for column, mask in columns.items()
            })
        for name in methods:
            section.add(name, **{
                column: _figure(hits[name][mask & chosen], None if name == baseline else hits[baseline][mask & chosen])
                for column, mask in columns.items()
            })
        sections.append(section)
    sections.append(_framing_by_emotion(found, replayed.scale_ratio, data_set, framed, hits[baseline], baseline))
    costs = Section("CPU ms a crop", note="process time of each method's crop, the found faces of every frame")
    for name, ms in replayed.cpu_ms.items():
        costs.add(name, ms=ms)
    return [*sections, costs]


def _framing_by_emotion(
    found: FoundFaces, scale_ratio: np.ndarray, data_set: np.ndarray, framed: dict[str, np.ndarray], aligned: np.ndarray,
    baseline: str,
) -> Section:
    """Per emotion (the drawn face's label), how much looser than FER2013 the landmarks frame its faces and what the
    model reads on each cut: where FER2013 framed an emotion's faces differently from the others, the model learnt
    that framing with it, and a crop framed by the face's own landmarks does not give it back."""
    from classpulse_core.labels import EMOTIONS

    section = Section(
        "Framing by emotion, all seeds",
        note="generated faces by their FER2013 label; scale ratio: the landmarks' alignment scale over the frame crop's "
        "(under 1: framed looser than FER2013 framed that face), median and 10th-90th percentile; accuracies as above",
    )
    scale_swap = next(iter(FRAMING_SWAPS))
    for label, emotion in enumerate(EMOTIONS):
        mine = (found.index >= 0) & (found.label == label)
        ratios = scale_ratio[mine & np.isfinite(scale_ratio)]
        if not len(ratios):
            continue
        low, median, high = np.percentile(ratios, [10, 50, 90])
        section.add(
            emotion, faces=int(mine.sum()), scale_ratio=f"{median:.3f} ({low:.2f}-{high:.2f})",
            fer2013_crops=_figure(data_set[mine], None), frame_crops=_figure(framed[FRAME_CROPS][mine], None),
            landmarks_scale=_figure(framed[scale_swap][mine], framed[FRAME_CROPS][mine]),
            **{baseline: _figure(aligned[mine], framed[FRAME_CROPS][mine])},
        )
    return section


def candidate_methods(finder) -> dict[str, CropMethod]:
    """The crop methods `compare` tries: the aligned crop as cut (`crop_one`, what the verifier reads), the shipped
    crop (`crop`: a blurred face's sharpened), other interpolations, sharpening and contrast normalisation (always, or
    only for crops of little fine detail (`sharpness`) or small faces), other framings for small faces."""
    from unittest import mock

    from classpulse_detector import blazeface
    from classpulse_detector.blazeface import sharpness, unsharp

    def interpolated(flag: int) -> CropMethod:
        def crop(gray: np.ndarray, face) -> np.ndarray:
            with mock.patch.object(blazeface, "ENLARGING", flag):
                return finder.crop_one(gray, face)  # type: ignore[no-any-return]
        return crop

    def post(step: Callable[[np.ndarray], np.ndarray], below: float | None = None, side_below: int | None = None) -> CropMethod:
        def crop(gray: np.ndarray, face) -> np.ndarray:
            aligned = finder.crop_one(gray, face)
            if below is not None and sharpness(aligned) >= below:
                return aligned  # type: ignore[no-any-return]
            if side_below is not None and face[2] >= side_below:
                return aligned  # type: ignore[no-any-return]
            return step(aligned)
        return crop

    def framed(zoom: float, side_below: int) -> CropMethod:
        def crop(gray: np.ndarray, face) -> np.ndarray:
            framing = finder.framing.zoomed(zoom) if face[2] < side_below else None
            return finder.crop_one(gray, face, framing)  # type: ignore[no-any-return]
        return crop

    clahe = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(4, 4))

    def stretched(crop: np.ndarray) -> np.ndarray:
        values = crop.astype(np.float32)
        scaled = (values - values.mean()) * (FER_STD / max(float(values.std()), 1.0)) + values.mean()
        return np.clip(scaled.round(), 0, 255).astype(np.uint8)

    def sharpened(amount: float, sigma: float) -> Callable[[np.ndarray], np.ndarray]:
        return lambda crop: unsharp(crop, amount, sigma)

    def shipped(gray: np.ndarray, face) -> np.ndarray:
        return finder.model_crop(gray, face)  # type: ignore[no-any-return]

    def dim_stretched(under: float) -> CropMethod:
        """The shipped crop, stretched to FER2013's contrast where its own is under `under` gray levels (a dim or
        flat face: the lighting family's gap)."""
        def crop(gray: np.ndarray, face) -> np.ndarray:
            cut = shipped(gray, face)
            return stretched(cut) if float(cut.std()) < under else cut
        return crop

    def tiered(crop: np.ndarray) -> np.ndarray:
        return unsharp(crop, 2.0, 2.0 if sharpness(crop) < 0.03 else 1.0)

    methods: dict[str, CropMethod] = {
        "aligned": finder.crop_one,
        "shipped": shipped,
        "shipped, dim stretched<40": dim_stretched(40.0),
        "shipped, dim stretched<55": dim_stretched(55.0),
        "lanczos": interpolated(cv2.INTER_LANCZOS4),
        "linear": interpolated(cv2.INTER_LINEAR),
        "equalised": post(cv2.equalizeHist),
        "equalised<0.1": post(cv2.equalizeHist, below=0.1),
        "clahe<0.1": post(clahe.apply, below=0.1),
        "stretch<0.1": post(stretched, below=0.1),
        "zoom0.92<40px": framed(0.92, 40),
        "zoom1.08<40px": framed(1.08, 40),
        "usm1s1<45px": post(sharpened(1.0, 1.0), side_below=45),
        "usm2s1<0.1": post(sharpened(2.0, 1.0), below=0.1),
        "usm1s2<0.1": post(sharpened(1.0, 2.0), below=0.1),
        "usm2s2<0.1": post(sharpened(2.0, 2.0), below=0.1),
        "usm3s2<0.1": post(sharpened(3.0, 2.0), below=0.1),
        "usm2s2<0.05": post(sharpened(2.0, 2.0), below=0.05),
        "usm2s2<0.2": post(sharpened(2.0, 2.0), below=0.2),
        "usm2s2": post(sharpened(2.0, 2.0)),
        "tiered<0.1": post(tiered, below=0.1),
    }
    return methods


FER_STD = 74.6
"""The median contrast (standard deviation) of a FER2013 PublicTest crop: most are histogram-equalised."""


def run_crops_bench(
    csv_path: str | None, seeds: list[int], frames: int, wild_sample: int, model_dir: Path
) -> FacesBenchResult:
    """Every candidate crop method on the found faces of `seeds` (`recorded`), read by the model of `model_dir`."""
    from classpulse_bench import machine
    from classpulse_demo.fer_csv import resolve_fer_csv
    from classpulse_training.fer_csv import load_fer_csv
    from classpulse_training.serving import SINGLE_PASS_SIGNATURE, load_signature, predict_probabilities

    data = load_fer_csv(resolve_fer_csv(csv_path)).split("PublicTest")
    images = data.images[..., 0]
    found = recorded(images, data.labels, seeds, frames, wild_sample)
    signature = load_signature(model_dir, SINGLE_PASS_SIGNATURE)
    methods = candidate_methods(_detectors(["blazeface"])["blazeface"]["room"])
    sections = compare(found, images, lambda crops: predict_probabilities(signature, crops), wild_sample, methods, "aligned")
    return FacesBenchResult(
        context={"machine": machine.describe(), "seeds": seeds, "frames_per_family": frames, "wild_sample": wild_sample,
                 "model": model_dir.name},
        sections=sections,
    )
