from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

T = TypeVar("T", bound="ClassOut")


@_attrs_define
class ClassOut:
    """
    Attributes:
        class_id (str):
        created_at_ms (int | Unset):  Default: 0.
        emotion_enabled (bool | Unset): false: presence-only for this class, no emotion inferred Default: True.
        expected_students (int | Unset): registered class size, for presence Default: 0.
        name (str | Unset):  Default: ''.
        teacher (None | str | Unset): teacher id whose key may read this class
    """

    class_id: str
    created_at_ms: int | Unset = 0
    emotion_enabled: bool | Unset = True
    expected_students: int | Unset = 0
    name: str | Unset = ""
    teacher: None | str | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        class_id = self.class_id

        created_at_ms = self.created_at_ms

        emotion_enabled = self.emotion_enabled

        expected_students = self.expected_students

        name = self.name

        teacher: None | str | Unset
        if isinstance(self.teacher, Unset):
            teacher = UNSET
        else:
            teacher = self.teacher

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "class_id": class_id,
            }
        )
        if created_at_ms is not UNSET:
            field_dict["created_at_ms"] = created_at_ms
        if emotion_enabled is not UNSET:
            field_dict["emotion_enabled"] = emotion_enabled
        if expected_students is not UNSET:
            field_dict["expected_students"] = expected_students
        if name is not UNSET:
            field_dict["name"] = name
        if teacher is not UNSET:
            field_dict["teacher"] = teacher

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        class_id = d.pop("class_id")

        created_at_ms = d.pop("created_at_ms", UNSET)

        emotion_enabled = d.pop("emotion_enabled", UNSET)

        expected_students = d.pop("expected_students", UNSET)

        name = d.pop("name", UNSET)

        def _parse_teacher(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        teacher = _parse_teacher(d.pop("teacher", UNSET))

        class_out = cls(
            class_id=class_id,
            created_at_ms=created_at_ms,
            emotion_enabled=emotion_enabled,
            expected_students=expected_students,
            name=name,
            teacher=teacher,
        )

        class_out.additional_properties = d
        return class_out

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
