from __future__ import annotations

from typing import Literal, get_args

from pydantic import Field

from classpulse_core.schemas import CameraKind
from classpulse_core.settings import RedisSettings
from classpulse_detector.faces import FaceDetector
from classpulse_detector.tracking import FaceFinder, TrackingDetector


class DetectorSettings(RedisSettings):
    http_port: int = Field(8002, description="CLASSPULSE_HTTP_PORT")
    # Room cameras get BlazeFace by default: it finds far more faces (24 frames a generated family, six seeds: recall
    # 0.94-0.98 per family, precision 0.98-1.00; faces-wild 0.980 of 2,115 photos; docs/face-detection.md) against
    # Haar's 0.06-0.69 and 0.78, and its landmarks give aligned crops and a head pose. Through the stack the sample
    # class as a room camera reads 1,675 faces of 1,674 shown, presence 0.932 against 0.930 and all four lesson phases
    # right, where Haar read 1,516, 0.842 and the neutral phase wrong. Its scans are scheduled (classpulse_detector.
    # tracking: template matching between scans, a quick look for a lost face, full scans bounded by the source's
    # smallest face, a deep scan every CLASSPULSE_DEEP_SCAN_INTERVAL_MS), yet it costs about twice Haar's CPU a frame
    # of make bench's sample class (8.1-8.7 ms against 4.1-4.7 on a busy machine): the "10x fer per CPU-second" target
    # is not reached with it (docs/face-detection.md, "Not reached yet"). Haar remains a setting for the cheapest rooms.
    face_detector: Literal["blazeface", "haar"] = Field(
        "blazeface", description="CLASSPULSE_FACE_DETECTOR: blazeface (CNN, with landmarks: aligned crops) or haar"
    )
    # A personal camera (a student's own webcam, frames marked camera_kind "personal") shows one large face, so it
    # gets a detector of its own: on 60 webcam snapshots of FER2013 PublicTest faces as the webcam demo makes them
    # (classpulse_demo.webcams, 640x480, seed 3), Haar found a face in 47, BlazeFace looking for faces from 80 px in
    # 59 (exactly one in 58) at 23 ms of CPU a frame (Haar: 15 ms; from 40 px: 94 ms, 59 found but 9 with a second
    # "face"; from 120 px: 9 ms, 57 exactly one) on this busy 2-core machine. A webcam posts a snapshot every few
    # seconds, so the cost per student is small whatever the detector. Checked on the faces bench's webcam family
    # (30 frames each of seeds 23, 41 and 24-29: 240 faces of a quarter to three quarters of the frame's height, at
    # 640x480 and 1280x720), recall / false faces / CPU ms a frame by smallest face: 40 px 0.958 / 21 / 113, 48 px
    # 0.967 / 10 / 73, 56 px 0.958 / 7 / 68, 64 px 0.958 / 7 / 58, 72 px 0.963 / 9 / 49, 80 px 0.958 / 4 / 48: the
    # fewest false faces and the least CPU at about the same recall (48 px: 2 faces more for 6 false ones more); the 10
    # faces missed at 80 px are hard FER2013 images (sunglasses, a hand over the face, a face cut by its crop, a
    # drawing).
    personal_face_detector: Literal["blazeface", "haar"] = Field(
        "blazeface", description="CLASSPULSE_PERSONAL_FACE_DETECTOR: the detector for students' own cameras"
    )
    personal_min_face_px: int = Field(
        80, ge=16, description="CLASSPULSE_PERSONAL_MIN_FACE_PX: smallest face looked for on a student's own camera"
    )
    # A gallery camera (a video call's gallery or a screen share of students' tiles) shows students' own webcams as
    # tiles: one frontal face a tile, 40 px and up in the faces bench's gallery family (2-25 tiles at 640x360 to
    # 1920x1080, through ingest's downscale to 1280), smaller in larger calls. Haar found half of them (recall 0.51,
    # 16 frames) and read a never-seen gallery of 8 at presence 0.78 against 0.97 sent (docs/face-detection.md,
    # "Galleries"). BlazeFace, full scans of 30 gallery frames each of seeds 23 and 41 (809 faces) on this busy
    # 2-core machine, by smallest face: 16 px recall 0.948, precision 0.976, 1.03 s of CPU a 1280x720 frame; 20 px
    # 0.949, 0.952, 1.01 s; 24 px 0.936, 0.977, 0.63 s; (seed 23 alone) 28 px 0.913, 0.981, 0.41 s; 32 px 0.910,
    # 0.986, 0.29 s; 40 px 0.872, 0.986, 0.18 s. 16 px puts the pyramid's finest level at its cap (MAX_UPSCALE: faces
    # from 19 px) and its levels between elsewhere than 20 does: on both seeds the same recall and cost as 20, 2.5
    # points more precision. That cost is a deep scan's (a source's first frame, then once a minute): tracking follows
    # a gallery's still tiles between (CLASSPULSE_DEEP_SCAN_INTERVAL_MS).
    gallery_face_detector: Literal["blazeface", "haar"] = Field(
        "blazeface", description="CLASSPULSE_GALLERY_FACE_DETECTOR: the detector for video-call galleries and screen shares"
    )
    gallery_min_face_px: int = Field(
        16, ge=16, description="CLASSPULSE_GALLERY_MIN_FACE_PX: smallest face looked for on a gallery"
    )
    # In a gallery, a face far smaller than the call's other faces is not a student's (blazeface.GALLERY_SMALLEST_SHARE):
    # a tile's label, a patch of a large face, a face in a picture behind a student.
    gallery_smallest_face_share: float = Field(
        0.4, ge=0.0, lt=1.0,
        description="CLASSPULSE_GALLERY_SMALLEST_FACE_SHARE: in a gallery's full scan, faces under this share of the "
        "median face side are dropped; 0: none",
    )
    blazeface_model: Literal["short", "full"] = Field(
        "short", description="CLASSPULSE_BLAZEFACE_MODEL: short-range (a scale pyramid) or full-range (one pass)"
    )
    # On the generated layouts, per pyramid level, 0.5 kept 468 true and 76 false detections, 0.6 421 and 19; with
    # the verifier (classpulse_detector.verifier: a candidate under 0.6, VERIFIED_BELOW, must look like a face in its
    # crop and its surroundings) 0.5 keeps the blurred, small and
    # noisy faces scoring 0.5-0.6 and drops most false ones there: summed shortfall from recall 0.97 / precision 0.98
    # over the families 0.182 -> 0.131 (tuning, seed 23), 0.241 -> 0.188 (checked, seed 41) and 0.151 -> 0.105 (seed
    # 19) against 0.6 with the second look alone, faces-wild as before (487 of 500 photos; docs/face-detection.md,
    # "Where the verifier judges").
    blazeface_min_score: float = Field(
        0.5, gt=0.0, lt=1.0, description="CLASSPULSE_BLAZEFACE_MIN_SCORE: detection confidence a face needs"
    )
    # Chosen on 20 frames of each generated family (seed 23: webcams, galleries of 2-25 tiles at 640x360-1920x1080,
    # rooms of 30-200 px faces, noise, blur, lighting, JPEG 15-40): the back rows of a room are 20-30 px once ingest
    # scales a 1920x1080 frame to 1280. Room family recall / precision from 40 px 0.66 / 0.93, 32 px 0.79 / 0.92,
    # 24 px 0.93 / 0.93, 20 px 0.96 / 0.93 (galleries 0.88, 0.94, 0.96, 0.96; every other family as good or better
    # at 20 px). The pyramid's cost grows with the square of 1 / this: 20 px costs ~1.4 s of CPU per full scan of a
    # 1280x720 frame on this busy shared core (40 px: ~0.3 s); tracking makes full scans rare.
    blazeface_min_face_px: int = Field(
        20, ge=16, description="CLASSPULSE_BLAZEFACE_MIN_FACE_PX: smallest face side looked for, in frame pixels"
    )
    # The Haar cascade's settings (CLASSPULSE_FACE_DETECTOR=haar).
    cascade_path: str | None = Field(None, description="CLASSPULSE_CASCADE_PATH; default: OpenCV's frontal-face Haar cascade")
    # Chosen by the bench (docs/performance.md) on two sample classes (seeds 7 and 11, 1,540 labelled faces) against
    # the former 1.1 / 5 / 40 px / 640: the same recall (0.926 and 0.787 vs 0.926 and 0.790), better precision
    # (0.995, 0.990 vs 0.976, 0.957) and accuracy of the whole (0.520 vs 0.489), at a third of the CPU per 640x480
    # frame (24 vs 75 ms on a busy core). Faces under 60 px are left out: a 640x480 gallery of 12 has 81 px faces;
    # the sample class layout (classpulse_demo.gallery) refuses layouts whose faces would be under 64 px.
    scale_factor: float = Field(1.15, gt=1.0, description="CLASSPULSE_SCALE_FACTOR: image pyramid step")
    min_neighbors: int = Field(3, ge=1, description="CLASSPULSE_MIN_NEIGHBORS: overlapping hits a face needs")
    min_face_px: int = Field(60, ge=16, description="CLASSPULSE_MIN_FACE_PX: smallest face side, in frame pixels")
    detect_max_side: int = Field(
        320, ge=160, description="CLASSPULSE_DETECT_MAX_SIDE: larger frames are downscaled for detection only"
    )
    # Haar boxes sit inside the face; FER2013's crops include brow and chin. Growing the box by 10% a side before
    # cropping raised accuracy on the sample class's detected faces from 50% to 61% (0.05: 56%, 0.15: 55%).
    crop_margin: float = Field(0.1, ge=0.0, le=0.5, description="CLASSPULSE_CROP_MARGIN: box growth before cropping")
    # BlazeFace's crop of a blurred face (sharpness under this: blazeface.sharpness) is unsharp-masked before the model
    # reads it: the blur family's crops 0.564 -> 0.575 (seeds 20, 21) and 0.533 -> 0.581 (seed 19), no other family or
    # faces-wild changed by more than a face (docs/face-detection.md, "Sharpening a blurred face's crop").
    crop_sharpen_below: float = Field(
        0.1, ge=0.0, le=1.0, description="CLASSPULSE_CROP_SHARPEN_BELOW: sharpness under which a crop is sharpened; 0: never"
    )
    # A BlazeFace scan whose faces' crops are blurred (median sharpness under this) is done again on the frame
    # sharpened, its faces found then (blazeface.SCAN_SHARPEN_BELOW; docs/face-detection.md, "Scanning a blurred frame
    # again, sharpened").
    scan_sharpen_below: float = Field(
        0.08, ge=0.0, le=1.0,
        description="CLASSPULSE_SCAN_SHARPEN_BELOW: a scan whose faces' median crop sharpness is under this is done "
        "again on the frame sharpened; 0: never",
    )
    # Between full scans, known faces are followed where their motion puts them (classpulse_detector.tracking), by
    # template matching for Haar (on the sample class, 3 instead of 22 ms of CPU per 640x480 frame at the same
    # recall) and by detection for BlazeFace (`python -m classpulse_bench tracking`: 27 ms a frame of the moving-faces
    # video against 25 for full scans and 10 for templates, all counting every frame right, with the landmarks of the
    # frame itself; on a 1280x720 room of 8 faces 91 ms against 348 for a full scan). A face arriving changes the
    # frame away from the known faces and is scanned for at once where it changed, so the periodic full scan is only
    # the safety net for a face the last scan missed on an otherwise still picture: 10 s bounds how long such a face
    # stays uncounted. At 2 frames/s a 5-s net was a full scan every 10th frame, the detector's largest cost at the
    # bench's half load (make bench, docs/performance.md).
    full_scan_interval_ms: int = Field(
        10_000, ge=0, description="CLASSPULSE_FULL_SCAN_INTERVAL_MS: capture time between full scans of a source; 0: every frame"
    )
    # A room or gallery camera does not move and its faces keep their sizes: between deep scans a full scan looks only
    # for faces from 0.7 of the smallest the source has shown (classpulse_detector.tracking.SMALLEST_FACE_SHARE), a
    # few levels of BlazeFace's pyramid instead of every level down to 20-px faces. A newcomer smaller than that
    # changes the picture and is scanned for where it changed at every size; this bounds how long one that arrived
    # unseen (no change noticed) stays uncounted. A full scan between that finds no face is done again at once at the
    # deep scan's levels for the source's face sizes (FaceFinder.rescan), and a deep scan that finds none keeps them.
    deep_scan_interval_ms: int = Field(
        60_000, ge=0,
        description="CLASSPULSE_DEEP_SCAN_INTERVAL_MS: capture time between full scans down to the smallest faces; 0: every full scan",
    )
    # OpenCV parallelises a cascade scan over all the cores by default; one replica per core scales better: on this
    # project's 2-core machine two threads took 8% more CPU a frame than one on a quiet machine (2.8 vs 2.6 ms), and
    # more on a busy one, where threads wait on each other. Replicas and partitions are the parallelism.
    opencv_threads: int = Field(1, ge=0, description="CLASSPULSE_OPENCV_THREADS: threads of OpenCV's parallel loops")
    # About 1.5 KB a source (a 32x32 template per face, a 16x12 thumbnail): 10,000 sources are ~15 MB, far more than
    # one replica keeps up with live (~150 webcams at 1 frame/s); one pushed out is simply scanned in full again.
    tracked_sources: int = Field(
        10_000, ge=1, description="CLASSPULSE_TRACKED_SOURCES: sources whose faces are remembered (LRU)"
    )

    def detector_name(self, camera_kind: CameraKind = "room") -> Literal["blazeface", "haar"]:
        return {"personal": self.personal_face_detector, "gallery": self.gallery_face_detector}.get(
            camera_kind, self.face_detector
        )

    def smallest_face_px(self, camera_kind: CameraKind = "room") -> int:
        """The smallest face side a kind's finder looks for: a personal or gallery camera's own, whichever detector it
        runs; a room camera's, the one its detector was tuned with."""
        if camera_kind == "personal":
            return self.personal_min_face_px
        if camera_kind == "gallery":
            return self.gallery_min_face_px
        return self.blazeface_min_face_px if self.face_detector == "blazeface" else self.min_face_px

    def face_finder(self, camera_kind: CameraKind = "room") -> FaceFinder:
        if self.detector_name(camera_kind) == "blazeface":
            from classpulse_detector.blazeface import (
                GALLERY_SHRUNK_SCAN,
                GALLERY_VERIFIED_BELOW,
                GALLERY_VERIFIER_MIN,
                VERIFIED_BELOW,
                VERIFIER_MIN,
                BlazeFaceDetector,
            )

            # A gallery's finder lets the verifier judge a wider band (blazeface.GALLERY_VERIFIED_BELOW), runs its
            # full scans again on the frame shrunk (blazeface.GALLERY_SHRUNK_SCAN) and drops their faces far smaller
            # than the others (blazeface.GALLERY_SMALLEST_SHARE).
            gallery = camera_kind == "gallery"
            band = (GALLERY_VERIFIED_BELOW, GALLERY_VERIFIER_MIN) if gallery else (VERIFIED_BELOW, VERIFIER_MIN)
            return BlazeFaceDetector(
                self.blazeface_model, self.blazeface_min_score, self.smallest_face_px(camera_kind),
                verified_below=band[0], verifier_min=band[1], sharpen_below=self.crop_sharpen_below,
                scan_sharpen_below=self.scan_sharpen_below, shrunk_scan=GALLERY_SHRUNK_SCAN if gallery else 0.0,
                smallest_share=self.gallery_smallest_face_share if gallery else 0.0,
            )
        return FaceDetector(
            self.cascade_path, self.scale_factor, self.min_neighbors, self.smallest_face_px(camera_kind),
            self.detect_max_side, self.crop_margin,
        )

    def tracking_detector(self, camera_kind: CameraKind = "room") -> TrackingDetector:
        """Known faces are followed by template matching, the detector run only around a face that no longer matches
        (for a face with landmarks, a stricter match: classpulse_detector.tracking.MIN_MATCH_LANDMARKS). Following
        BlazeFace's faces by detection on every frame cost a forward a face a frame: on make bench's webcam-like
        sample class, 43-69 ms of CPU a frame against 11 by template, at recall 0.93 / 0.96 and precision 1.00 /
        0.999 (docs/face-detection.md, "What scanning costs")."""
        return TrackingDetector(
            self.face_finder(camera_kind), self.full_scan_interval_ms, self.deep_scan_interval_ms, self.tracked_sources
        )

    def tracking_detectors(self) -> dict[CameraKind, TrackingDetector]:
        """One detector per kind of camera: a source is always of one kind, so each keeps its own sources' tracks."""
        return {kind: self.tracking_detector(kind) for kind in get_args(CameraKind)}
