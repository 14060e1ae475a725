from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.role import Role

T = TypeVar("T", bound="KeyCreated")


@_attrs_define
class KeyCreated:
    """
    Attributes:
        api_key (str): shown once: only its hash is stored
        key_id (str):
        role (Role):
        teacher_id (None | str):
    """

    api_key: str
    key_id: str
    role: Role
    teacher_id: None | str
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        api_key = self.api_key

        key_id = self.key_id

        role = self.role.value

        teacher_id: None | str
        teacher_id = self.teacher_id

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "api_key": api_key,
                "key_id": key_id,
                "role": role,
                "teacher_id": teacher_id,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        api_key = d.pop("api_key")

        key_id = d.pop("key_id")

        role = Role(d.pop("role"))

        def _parse_teacher_id(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        teacher_id = _parse_teacher_id(d.pop("teacher_id"))

        key_created = cls(
            api_key=api_key,
            key_id=key_id,
            role=role,
            teacher_id=teacher_id,
        )

        key_created.additional_properties = d
        return key_created

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
