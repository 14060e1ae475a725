from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

T = TypeVar("T", bound="Session")


@_attrs_define
class Session:
    """
    Attributes:
        class_id (str):
        session_id (str):
        started_at_ms (int):
        ended_at_ms (int | None | Unset):
        name (str | Unset):  Default: ''.
    """

    class_id: str
    session_id: str
    started_at_ms: int
    ended_at_ms: int | None | Unset = UNSET
    name: str | Unset = ""
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        class_id = self.class_id

        session_id = self.session_id

        started_at_ms = self.started_at_ms

        ended_at_ms: int | None | Unset
        if isinstance(self.ended_at_ms, Unset):
            ended_at_ms = UNSET
        else:
            ended_at_ms = self.ended_at_ms

        name = self.name

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "class_id": class_id,
                "session_id": session_id,
                "started_at_ms": started_at_ms,
            }
        )
        if ended_at_ms is not UNSET:
            field_dict["ended_at_ms"] = ended_at_ms
        if name is not UNSET:
            field_dict["name"] = name

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        class_id = d.pop("class_id")

        session_id = d.pop("session_id")

        started_at_ms = d.pop("started_at_ms")

        def _parse_ended_at_ms(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        ended_at_ms = _parse_ended_at_ms(d.pop("ended_at_ms", UNSET))

        name = d.pop("name", UNSET)

        session = cls(
            class_id=class_id,
            session_id=session_id,
            started_at_ms=started_at_ms,
            ended_at_ms=ended_at_ms,
            name=name,
        )

        session.additional_properties = d
        return session

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
