from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.emotion_shares import EmotionShares


T = TypeVar("T", bound="SeriesPoint")


@_attrs_define
class SeriesPoint:
    """One bucket: its start, and the metrics asked for (all of them by default).

    Attributes:
        t (int): bucket start, epoch ms
        time (str): bucket start, ISO 8601
        attention_risk (float | None | Unset):
        classified_faces (int | None | Unset):
        classified_share (float | None | Unset):
        dominant_emotion (None | str | Unset):
        emotions (EmotionShares | None | Unset):
        emotions_raw (EmotionShares | None | Unset):
        faces (int | None | Unset):
        faces_per_frame (float | None | Unset):
        facing_screen (float | None | Unset):
        frames (int | None | Unset):
        mood_index (float | None | Unset):
        on_camera (float | None | Unset):
        presence (float | None | Unset):
    """

    t: int
    time: str
    attention_risk: float | None | Unset = UNSET
    classified_faces: int | None | Unset = UNSET
    classified_share: float | None | Unset = UNSET
    dominant_emotion: None | str | Unset = UNSET
    emotions: EmotionShares | None | Unset = UNSET
    emotions_raw: EmotionShares | None | Unset = UNSET
    faces: int | None | Unset = UNSET
    faces_per_frame: float | None | Unset = UNSET
    facing_screen: float | None | Unset = UNSET
    frames: int | None | Unset = UNSET
    mood_index: float | None | Unset = UNSET
    on_camera: float | None | Unset = UNSET
    presence: float | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.emotion_shares import EmotionShares  # noqa: PLC0415

        t = self.t

        time = self.time

        attention_risk: float | None | Unset
        if isinstance(self.attention_risk, Unset):
            attention_risk = UNSET
        else:
            attention_risk = self.attention_risk

        classified_faces: int | None | Unset
        if isinstance(self.classified_faces, Unset):
            classified_faces = UNSET
        else:
            classified_faces = self.classified_faces

        classified_share: float | None | Unset
        if isinstance(self.classified_share, Unset):
            classified_share = UNSET
        else:
            classified_share = self.classified_share

        dominant_emotion: None | str | Unset
        if isinstance(self.dominant_emotion, Unset):
            dominant_emotion = UNSET
        else:
            dominant_emotion = self.dominant_emotion

        emotions: dict[str, Any] | None | Unset
        if isinstance(self.emotions, Unset):
            emotions = UNSET
        elif isinstance(self.emotions, EmotionShares):
            emotions = self.emotions.to_dict()
        else:
            emotions = self.emotions

        emotions_raw: dict[str, Any] | None | Unset
        if isinstance(self.emotions_raw, Unset):
            emotions_raw = UNSET
        elif isinstance(self.emotions_raw, EmotionShares):
            emotions_raw = self.emotions_raw.to_dict()
        else:
            emotions_raw = self.emotions_raw

        faces: int | None | Unset
        if isinstance(self.faces, Unset):
            faces = UNSET
        else:
            faces = self.faces

        faces_per_frame: float | None | Unset
        if isinstance(self.faces_per_frame, Unset):
            faces_per_frame = UNSET
        else:
            faces_per_frame = self.faces_per_frame

        facing_screen: float | None | Unset
        if isinstance(self.facing_screen, Unset):
            facing_screen = UNSET
        else:
            facing_screen = self.facing_screen

        frames: int | None | Unset
        if isinstance(self.frames, Unset):
            frames = UNSET
        else:
            frames = self.frames

        mood_index: float | None | Unset
        if isinstance(self.mood_index, Unset):
            mood_index = UNSET
        else:
            mood_index = self.mood_index

        on_camera: float | None | Unset
        if isinstance(self.on_camera, Unset):
            on_camera = UNSET
        else:
            on_camera = self.on_camera

        presence: float | None | Unset
        if isinstance(self.presence, Unset):
            presence = UNSET
        else:
            presence = self.presence

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "t": t,
                "time": time,
            }
        )
        if attention_risk is not UNSET:
            field_dict["attention_risk"] = attention_risk
        if classified_faces is not UNSET:
            field_dict["classified_faces"] = classified_faces
        if classified_share is not UNSET:
            field_dict["classified_share"] = classified_share
        if dominant_emotion is not UNSET:
            field_dict["dominant_emotion"] = dominant_emotion
        if emotions is not UNSET:
            field_dict["emotions"] = emotions
        if emotions_raw is not UNSET:
            field_dict["emotions_raw"] = emotions_raw
        if faces is not UNSET:
            field_dict["faces"] = faces
        if faces_per_frame is not UNSET:
            field_dict["faces_per_frame"] = faces_per_frame
        if facing_screen is not UNSET:
            field_dict["facing_screen"] = facing_screen
        if frames is not UNSET:
            field_dict["frames"] = frames
        if mood_index is not UNSET:
            field_dict["mood_index"] = mood_index
        if on_camera is not UNSET:
            field_dict["on_camera"] = on_camera
        if presence is not UNSET:
            field_dict["presence"] = presence

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.emotion_shares import EmotionShares  # noqa: PLC0415

        d = dict(src_dict)
        t = d.pop("t")

        time = d.pop("time")

        def _parse_attention_risk(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        attention_risk = _parse_attention_risk(d.pop("attention_risk", UNSET))

        def _parse_classified_faces(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        classified_faces = _parse_classified_faces(d.pop("classified_faces", UNSET))

        def _parse_classified_share(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        classified_share = _parse_classified_share(d.pop("classified_share", UNSET))

        def _parse_dominant_emotion(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        dominant_emotion = _parse_dominant_emotion(d.pop("dominant_emotion", UNSET))

        def _parse_emotions(data: object) -> EmotionShares | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                emotions_type_0 = EmotionShares.from_dict(data)

                return emotions_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(EmotionShares | None | Unset, data)

        emotions = _parse_emotions(d.pop("emotions", UNSET))

        def _parse_emotions_raw(data: object) -> EmotionShares | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                emotions_raw_type_0 = EmotionShares.from_dict(data)

                return emotions_raw_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(EmotionShares | None | Unset, data)

        emotions_raw = _parse_emotions_raw(d.pop("emotions_raw", UNSET))

        def _parse_faces(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        faces = _parse_faces(d.pop("faces", UNSET))

        def _parse_faces_per_frame(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        faces_per_frame = _parse_faces_per_frame(d.pop("faces_per_frame", UNSET))

        def _parse_facing_screen(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        facing_screen = _parse_facing_screen(d.pop("facing_screen", UNSET))

        def _parse_frames(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        frames = _parse_frames(d.pop("frames", UNSET))

        def _parse_mood_index(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        mood_index = _parse_mood_index(d.pop("mood_index", UNSET))

        def _parse_on_camera(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        on_camera = _parse_on_camera(d.pop("on_camera", UNSET))

        def _parse_presence(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        presence = _parse_presence(d.pop("presence", UNSET))

        series_point = cls(
            t=t,
            time=time,
            attention_risk=attention_risk,
            classified_faces=classified_faces,
            classified_share=classified_share,
            dominant_emotion=dominant_emotion,
            emotions=emotions,
            emotions_raw=emotions_raw,
            faces=faces,
            faces_per_frame=faces_per_frame,
            facing_screen=facing_screen,
            frames=frames,
            mood_index=mood_index,
            on_camera=on_camera,
            presence=presence,
        )

        series_point.additional_properties = d
        return series_point

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
