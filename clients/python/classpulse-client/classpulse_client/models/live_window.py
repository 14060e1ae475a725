from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.emotion_shares import EmotionShares


T = TypeVar("T", bound="LiveWindow")


@_attrs_define
class LiveWindow:
    """
    Attributes:
        at (str):
        attention_risk (float | None): share of the class away or in negative affect, 0..1
        class_id (str):
        classified_faces (int | None): faces whose emotions were read: the faces the emotion shares come from (the sum
            of their probabilities); fewer than `faces` where part of the range was presence-only or faces were seen but not
            classified; null when off
        classified_share (float | None): classified_faces / faces, 0..1: how much of what was seen the emotion shares
            were read from; null when off or without faces
        dominant_emotion (None | str):
        emotion_enabled (bool):
        emotion_status (str):
        emotions (EmotionShares | None): share of each emotion, corrected for the model's known errors (probabilistic
            adjusted classify-and-count from the mean probabilities); null when off or without faces
        emotions_raw (EmotionShares | None): the raw mean of the faces' emotion probabilities, which leans towards the
            mix the model learnt from; null when off or without faces
        faces (int): faces seen
        faces_per_frame (float | None):
        facing_screen (float | None): share of the students on camera with a head pose whose head faced their camera
            (|yaw| <= 30 deg, |pitch| <= 25 deg): a movement, not an emotion, so shown in presence-only classes too; null
            when no face had a pose (a Haar-only camera)
        frames (int): frames processed
        mood_index (float | None): valence-weighted emotion shares, -1..1
        on_camera (float | None): students on camera, on average over the seconds the class was watched (live: the whole
            window)
        presence (float | None): students on camera / expected students, capped at 1
        window_s (int):
    """

    at: str
    attention_risk: float | None
    class_id: str
    classified_faces: int | None
    classified_share: float | None
    dominant_emotion: None | str
    emotion_enabled: bool
    emotion_status: str
    emotions: EmotionShares | None
    emotions_raw: EmotionShares | None
    faces: int
    faces_per_frame: float | None
    facing_screen: float | None
    frames: int
    mood_index: float | None
    on_camera: float | None
    presence: float | None
    window_s: int
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.emotion_shares import EmotionShares  # noqa: PLC0415

        at = self.at

        attention_risk: float | None
        attention_risk = self.attention_risk

        class_id = self.class_id

        classified_faces: int | None
        classified_faces = self.classified_faces

        classified_share: float | None
        classified_share = self.classified_share

        dominant_emotion: None | str
        dominant_emotion = self.dominant_emotion

        emotion_enabled = self.emotion_enabled

        emotion_status = self.emotion_status

        emotions: dict[str, Any] | None
        if isinstance(self.emotions, EmotionShares):
            emotions = self.emotions.to_dict()
        else:
            emotions = self.emotions

        emotions_raw: dict[str, Any] | None
        if isinstance(self.emotions_raw, EmotionShares):
            emotions_raw = self.emotions_raw.to_dict()
        else:
            emotions_raw = self.emotions_raw

        faces = self.faces

        faces_per_frame: float | None
        faces_per_frame = self.faces_per_frame

        facing_screen: float | None
        facing_screen = self.facing_screen

        frames = self.frames

        mood_index: float | None
        mood_index = self.mood_index

        on_camera: float | None
        on_camera = self.on_camera

        presence: float | None
        presence = self.presence

        window_s = self.window_s

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "at": at,
                "attention_risk": attention_risk,
                "class_id": class_id,
                "classified_faces": classified_faces,
                "classified_share": classified_share,
                "dominant_emotion": dominant_emotion,
                "emotion_enabled": emotion_enabled,
                "emotion_status": emotion_status,
                "emotions": emotions,
                "emotions_raw": emotions_raw,
                "faces": faces,
                "faces_per_frame": faces_per_frame,
                "facing_screen": facing_screen,
                "frames": frames,
                "mood_index": mood_index,
                "on_camera": on_camera,
                "presence": presence,
                "window_s": window_s,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.emotion_shares import EmotionShares  # noqa: PLC0415

        d = dict(src_dict)
        at = d.pop("at")

        def _parse_attention_risk(data: object) -> float | None:
            if data is None:
                return data
            return cast(float | None, data)

        attention_risk = _parse_attention_risk(d.pop("attention_risk"))

        class_id = d.pop("class_id")

        def _parse_classified_faces(data: object) -> int | None:
            if data is None:
                return data
            return cast(int | None, data)

        classified_faces = _parse_classified_faces(d.pop("classified_faces"))

        def _parse_classified_share(data: object) -> float | None:
            if data is None:
                return data
            return cast(float | None, data)

        classified_share = _parse_classified_share(d.pop("classified_share"))

        def _parse_dominant_emotion(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        dominant_emotion = _parse_dominant_emotion(d.pop("dominant_emotion"))

        emotion_enabled = d.pop("emotion_enabled")

        emotion_status = d.pop("emotion_status")

        def _parse_emotions(data: object) -> EmotionShares | None:
            if data is None:
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                emotions_type_0 = EmotionShares.from_dict(data)

                return emotions_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(EmotionShares | None, data)

        emotions = _parse_emotions(d.pop("emotions"))

        def _parse_emotions_raw(data: object) -> EmotionShares | None:
            if data is None:
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                emotions_raw_type_0 = EmotionShares.from_dict(data)

                return emotions_raw_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(EmotionShares | None, data)

        emotions_raw = _parse_emotions_raw(d.pop("emotions_raw"))

        faces = d.pop("faces")

        def _parse_faces_per_frame(data: object) -> float | None:
            if data is None:
                return data
            return cast(float | None, data)

        faces_per_frame = _parse_faces_per_frame(d.pop("faces_per_frame"))

        def _parse_facing_screen(data: object) -> float | None:
            if data is None:
                return data
            return cast(float | None, data)

        facing_screen = _parse_facing_screen(d.pop("facing_screen"))

        frames = d.pop("frames")

        def _parse_mood_index(data: object) -> float | None:
            if data is None:
                return data
            return cast(float | None, data)

        mood_index = _parse_mood_index(d.pop("mood_index"))

        def _parse_on_camera(data: object) -> float | None:
            if data is None:
                return data
            return cast(float | None, data)

        on_camera = _parse_on_camera(d.pop("on_camera"))

        def _parse_presence(data: object) -> float | None:
            if data is None:
                return data
            return cast(float | None, data)

        presence = _parse_presence(d.pop("presence"))

        window_s = d.pop("window_s")

        live_window = cls(
            at=at,
            attention_risk=attention_risk,
            class_id=class_id,
            classified_faces=classified_faces,
            classified_share=classified_share,
            dominant_emotion=dominant_emotion,
            emotion_enabled=emotion_enabled,
            emotion_status=emotion_status,
            emotions=emotions,
            emotions_raw=emotions_raw,
            faces=faces,
            faces_per_frame=faces_per_frame,
            facing_screen=facing_screen,
            frames=frames,
            mood_index=mood_index,
            on_camera=on_camera,
            presence=presence,
            window_s=window_s,
        )

        live_window.additional_properties = d
        return live_window

    @property
    def additional_keys(self) -> list[str]:
        return list(self.additional_properties.keys())

    def __getitem__(self, key: str) -> Any:
        return self.additional_properties[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.additional_properties[key] = value

    def __delitem__(self, key: str) -> None:
        del self.additional_properties[key]

    def __contains__(self, key: str) -> bool:
        return key in self.additional_properties
