from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="Peak")


@_attrs_define
class Peak:
    """
    Attributes:
        attention_risk (float | None):
        negative_share (float):
        t (int):
        time (str):
    """

    attention_risk: float | None
    negative_share: float
    t: int
    time: str
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        attention_risk: float | None
        attention_risk = self.attention_risk

        negative_share = self.negative_share

        t = self.t

        time = self.time

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "attention_risk": attention_risk,
                "negative_share": negative_share,
                "t": t,
                "time": time,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)

        def _parse_attention_risk(data: object) -> float | None:
            if data is None:
                return data
            return cast(float | None, data)

        attention_risk = _parse_attention_risk(d.pop("attention_risk"))

        negative_share = d.pop("negative_share")

        t = d.pop("t")

        time = d.pop("time")

        peak = cls(
            attention_risk=attention_risk,
            negative_share=negative_share,
            t=t,
            time=time,
        )

        peak.additional_properties = d
        return peak

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
