from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

T = TypeVar("T", bound="WebhookCreated")


@_attrs_define
class WebhookCreated:
    """
    Attributes:
        created_at_ms (int):
        secret (str): shown once: the key of the signatures (Standard Webhooks)
        url (str):
        webhook_id (str):
        class_id (None | str | Unset):
        description (str | Unset):  Default: ''.
        owner_teacher (None | str | Unset): the teacher whose key may see and delete it
        teacher_id (None | str | Unset):
    """

    created_at_ms: int
    secret: str
    url: str
    webhook_id: str
    class_id: None | str | Unset = UNSET
    description: str | Unset = ""
    owner_teacher: None | str | Unset = UNSET
    teacher_id: None | str | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        created_at_ms = self.created_at_ms

        secret = self.secret

        url = self.url

        webhook_id = self.webhook_id

        class_id: None | str | Unset
        if isinstance(self.class_id, Unset):
            class_id = UNSET
        else:
            class_id = self.class_id

        description = self.description

        owner_teacher: None | str | Unset
        if isinstance(self.owner_teacher, Unset):
            owner_teacher = UNSET
        else:
            owner_teacher = self.owner_teacher

        teacher_id: None | str | Unset
        if isinstance(self.teacher_id, Unset):
            teacher_id = UNSET
        else:
            teacher_id = self.teacher_id

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "created_at_ms": created_at_ms,
                "secret": secret,
                "url": url,
                "webhook_id": webhook_id,
            }
        )
        if class_id is not UNSET:
            field_dict["class_id"] = class_id
        if description is not UNSET:
            field_dict["description"] = description
        if owner_teacher is not UNSET:
            field_dict["owner_teacher"] = owner_teacher
        if teacher_id is not UNSET:
            field_dict["teacher_id"] = teacher_id

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        created_at_ms = d.pop("created_at_ms")

        secret = d.pop("secret")

        url = d.pop("url")

        webhook_id = d.pop("webhook_id")

        def _parse_class_id(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        class_id = _parse_class_id(d.pop("class_id", UNSET))

        description = d.pop("description", UNSET)

        def _parse_owner_teacher(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        owner_teacher = _parse_owner_teacher(d.pop("owner_teacher", UNSET))

        def _parse_teacher_id(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        teacher_id = _parse_teacher_id(d.pop("teacher_id", UNSET))

        webhook_created = cls(
            created_at_ms=created_at_ms,
            secret=secret,
            url=url,
            webhook_id=webhook_id,
            class_id=class_id,
            description=description,
            owner_teacher=owner_teacher,
            teacher_id=teacher_id,
        )

        webhook_created.additional_properties = d
        return webhook_created

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
