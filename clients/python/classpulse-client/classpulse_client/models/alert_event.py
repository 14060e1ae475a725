from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

T = TypeVar("T", bound="AlertEvent")


@_attrs_define
class AlertEvent:
    """
    Attributes:
        class_id (str):
        index (str): attention_risk, mood_index or presence
        kind (str): 'started' when the condition began to hold long enough, 'ended' when it cleared
        t (int): epoch ms
        threshold (float):
        value (float | None): the index when the event was recorded; null if it could not be computed
        event_id (str | Unset):  Default: ''.
    """

    class_id: str
    index: str
    kind: str
    t: int
    threshold: float
    value: float | None
    event_id: str | Unset = ""
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        class_id = self.class_id

        index = self.index

        kind = self.kind

        t = self.t

        threshold = self.threshold

        value: float | None
        value = self.value

        event_id = self.event_id

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "class_id": class_id,
                "index": index,
                "kind": kind,
                "t": t,
                "threshold": threshold,
                "value": value,
            }
        )
        if event_id is not UNSET:
            field_dict["event_id"] = event_id

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        class_id = d.pop("class_id")

        index = d.pop("index")

        kind = d.pop("kind")

        t = d.pop("t")

        threshold = d.pop("threshold")

        def _parse_value(data: object) -> float | None:
            if data is None:
                return data
            return cast(float | None, data)

        value = _parse_value(d.pop("value"))

        event_id = d.pop("event_id", UNSET)

        alert_event = cls(
            class_id=class_id,
            index=index,
            kind=kind,
            t=t,
            threshold=threshold,
            value=value,
            event_id=event_id,
        )

        alert_event.additional_properties = d
        return alert_event

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
