from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

T = TypeVar("T", bound="WebhookCreate")


@_attrs_define
class WebhookCreate:
    """
    Attributes:
        url (str): where events are POSTed; it must resolve into CLASSPULSE_WEBHOOK_ALLOWED_NETWORKS
        class_id (None | str | Unset): the class whose alerts are sent
        description (str | Unset):  Default: ''.
        teacher_id (None | str | Unset): the teacher whose classes' alerts are sent (a teacher key: its own, by default)
    """

    url: str
    class_id: None | str | Unset = UNSET
    description: str | Unset = ""
    teacher_id: None | str | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        url = self.url

        class_id: None | str | Unset
        if isinstance(self.class_id, Unset):
            class_id = UNSET
        else:
            class_id = self.class_id

        description = self.description

        teacher_id: None | str | Unset
        if isinstance(self.teacher_id, Unset):
            teacher_id = UNSET
        else:
            teacher_id = self.teacher_id

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "url": url,
            }
        )
        if class_id is not UNSET:
            field_dict["class_id"] = class_id
        if description is not UNSET:
            field_dict["description"] = description
        if teacher_id is not UNSET:
            field_dict["teacher_id"] = teacher_id

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        url = d.pop("url")

        def _parse_class_id(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        class_id = _parse_class_id(d.pop("class_id", UNSET))

        description = d.pop("description", UNSET)

        def _parse_teacher_id(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        teacher_id = _parse_teacher_id(d.pop("teacher_id", UNSET))

        webhook_create = cls(
            url=url,
            class_id=class_id,
            description=description,
            teacher_id=teacher_id,
        )

        webhook_create.additional_properties = d
        return webhook_create

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
