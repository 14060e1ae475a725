from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="EmotionShares")


@_attrs_define
class EmotionShares:
    """
    Attributes:
        angry (float):
        disgust (float):
        fear (float):
        happy (float):
        neutral (float):
        sad (float):
        surprise (float):
    """

    angry: float
    disgust: float
    fear: float
    happy: float
    neutral: float
    sad: float
    surprise: float
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        angry = self.angry

        disgust = self.disgust

        fear = self.fear

        happy = self.happy

        neutral = self.neutral

        sad = self.sad

        surprise = self.surprise

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "angry": angry,
                "disgust": disgust,
                "fear": fear,
                "happy": happy,
                "neutral": neutral,
                "sad": sad,
                "surprise": surprise,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        angry = d.pop("angry")

        disgust = d.pop("disgust")

        fear = d.pop("fear")

        happy = d.pop("happy")

        neutral = d.pop("neutral")

        sad = d.pop("sad")

        surprise = d.pop("surprise")

        emotion_shares = cls(
            angry=angry,
            disgust=disgust,
            fear=fear,
            happy=happy,
            neutral=neutral,
            sad=sad,
            surprise=surprise,
        )

        emotion_shares.additional_properties = d
        return emotion_shares

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
