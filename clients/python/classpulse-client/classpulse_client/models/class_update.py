from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

T = TypeVar("T", bound="ClassUpdate")


@_attrs_define
class ClassUpdate:
    """
    Attributes:
        emotion_enabled (bool | None | Unset):
        expected_students (int | None | Unset):
        name (None | str | Unset):
        teacher (None | str | Unset):
    """

    emotion_enabled: bool | None | Unset = UNSET
    expected_students: int | None | Unset = UNSET
    name: None | str | Unset = UNSET
    teacher: None | str | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        emotion_enabled: bool | None | Unset
        if isinstance(self.emotion_enabled, Unset):
            emotion_enabled = UNSET
        else:
            emotion_enabled = self.emotion_enabled

        expected_students: int | None | Unset
        if isinstance(self.expected_students, Unset):
            expected_students = UNSET
        else:
            expected_students = self.expected_students

        name: None | str | Unset
        if isinstance(self.name, Unset):
            name = UNSET
        else:
            name = self.name

        teacher: None | str | Unset
        if isinstance(self.teacher, Unset):
            teacher = UNSET
        else:
            teacher = self.teacher

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({})
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

        def _parse_emotion_enabled(data: object) -> bool | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(bool | None | Unset, data)

        emotion_enabled = _parse_emotion_enabled(d.pop("emotion_enabled", UNSET))

        def _parse_expected_students(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        expected_students = _parse_expected_students(d.pop("expected_students", UNSET))

        def _parse_name(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        name = _parse_name(d.pop("name", UNSET))

        def _parse_teacher(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        teacher = _parse_teacher(d.pop("teacher", UNSET))

        class_update = cls(
            emotion_enabled=emotion_enabled,
            expected_students=expected_students,
            name=name,
            teacher=teacher,
        )

        class_update.additional_properties = d
        return class_update

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
