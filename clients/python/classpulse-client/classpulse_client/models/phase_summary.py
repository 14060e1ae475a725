from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="PhaseSummary")


@_attrs_define
class PhaseSummary:
    """
    Attributes:
        classified_faces (int): faces of the part whose emotions were read (its dominant emotion's)
        classified_share (float | None): classified_faces / faces; null without faces
        dominant_emotion (None | str):
        end (str):
        faces (int):
        mood_index (float | None):
        start (str):
    """

    classified_faces: int
    classified_share: float | None
    dominant_emotion: None | str
    end: str
    faces: int
    mood_index: float | None
    start: str
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        classified_faces = self.classified_faces

        classified_share: float | None
        classified_share = self.classified_share

        dominant_emotion: None | str
        dominant_emotion = self.dominant_emotion

        end = self.end

        faces = self.faces

        mood_index: float | None
        mood_index = self.mood_index

        start = self.start

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "classified_faces": classified_faces,
                "classified_share": classified_share,
                "dominant_emotion": dominant_emotion,
                "end": end,
                "faces": faces,
                "mood_index": mood_index,
                "start": start,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        classified_faces = d.pop("classified_faces")

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

        end = d.pop("end")

        faces = d.pop("faces")

        def _parse_mood_index(data: object) -> float | None:
            if data is None:
                return data
            return cast(float | None, data)

        mood_index = _parse_mood_index(d.pop("mood_index"))

        start = d.pop("start")

        phase_summary = cls(
            classified_faces=classified_faces,
            classified_share=classified_share,
            dominant_emotion=dominant_emotion,
            end=end,
            faces=faces,
            mood_index=mood_index,
            start=start,
        )

        phase_summary.additional_properties = d
        return phase_summary

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
