from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.api_key_camera_kind_type_0 import ApiKeyCameraKindType0
from ..models.role import Role
from ..types import UNSET, Unset

T = TypeVar("T", bound="ApiKey")


@_attrs_define
class ApiKey:
    """
    Attributes:
        key_id (str):
        role (Role):
        camera_kind (ApiKeyCameraKindType0 | None | Unset): for student keys: what the page's camera shows (personal,
            the default: the student alone; room; gallery)
        class_id (None | str | Unset): for student keys: the one class whose frames it may post; for viewer keys: the
            one class it reads
        created_at_ms (int | Unset):  Default: 0.
        expires_at_ms (int | None | Unset): when the key stops working; None: until revoked
        name (str | Unset):  Default: ''.
        teacher_id (None | str | Unset): for teacher keys: the teacher whose classes it reads
    """

    key_id: str
    role: Role
    camera_kind: ApiKeyCameraKindType0 | None | Unset = UNSET
    class_id: None | str | Unset = UNSET
    created_at_ms: int | Unset = 0
    expires_at_ms: int | None | Unset = UNSET
    name: str | Unset = ""
    teacher_id: None | str | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        key_id = self.key_id

        role = self.role.value

        camera_kind: None | str | Unset
        if isinstance(self.camera_kind, Unset):
            camera_kind = UNSET
        elif isinstance(self.camera_kind, ApiKeyCameraKindType0):
            camera_kind = self.camera_kind.value
        else:
            camera_kind = self.camera_kind

        class_id: None | str | Unset
        if isinstance(self.class_id, Unset):
            class_id = UNSET
        else:
            class_id = self.class_id

        created_at_ms = self.created_at_ms

        expires_at_ms: int | None | Unset
        if isinstance(self.expires_at_ms, Unset):
            expires_at_ms = UNSET
        else:
            expires_at_ms = self.expires_at_ms

        name = self.name

        teacher_id: None | str | Unset
        if isinstance(self.teacher_id, Unset):
            teacher_id = UNSET
        else:
            teacher_id = self.teacher_id

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "key_id": key_id,
                "role": role,
            }
        )
        if camera_kind is not UNSET:
            field_dict["camera_kind"] = camera_kind
        if class_id is not UNSET:
            field_dict["class_id"] = class_id
        if created_at_ms is not UNSET:
            field_dict["created_at_ms"] = created_at_ms
        if expires_at_ms is not UNSET:
            field_dict["expires_at_ms"] = expires_at_ms
        if name is not UNSET:
            field_dict["name"] = name
        if teacher_id is not UNSET:
            field_dict["teacher_id"] = teacher_id

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        key_id = d.pop("key_id")

        role = Role(d.pop("role"))

        def _parse_camera_kind(data: object) -> ApiKeyCameraKindType0 | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                camera_kind_type_0 = ApiKeyCameraKindType0(data)

                return camera_kind_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(ApiKeyCameraKindType0 | None | Unset, data)

        camera_kind = _parse_camera_kind(d.pop("camera_kind", UNSET))

        def _parse_class_id(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        class_id = _parse_class_id(d.pop("class_id", UNSET))

        created_at_ms = d.pop("created_at_ms", UNSET)

        def _parse_expires_at_ms(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        expires_at_ms = _parse_expires_at_ms(d.pop("expires_at_ms", UNSET))

        name = d.pop("name", UNSET)

        def _parse_teacher_id(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        teacher_id = _parse_teacher_id(d.pop("teacher_id", UNSET))

        api_key = cls(
            key_id=key_id,
            role=role,
            camera_kind=camera_kind,
            class_id=class_id,
            created_at_ms=created_at_ms,
            expires_at_ms=expires_at_ms,
            name=name,
            teacher_id=teacher_id,
        )

        api_key.additional_properties = d
        return api_key

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
