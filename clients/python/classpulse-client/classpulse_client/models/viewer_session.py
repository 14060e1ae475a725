from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="ViewerSession")


@_attrs_define
class ViewerSession:
    """
    Attributes:
        api_key (str): a viewer key for this class only, read-only; expires with the token
        class_id (str):
        expires_at_ms (int):
        issuer (str):
    """

    api_key: str
    class_id: str
    expires_at_ms: int
    issuer: str
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        api_key = self.api_key

        class_id = self.class_id

        expires_at_ms = self.expires_at_ms

        issuer = self.issuer

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "api_key": api_key,
                "class_id": class_id,
                "expires_at_ms": expires_at_ms,
                "issuer": issuer,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        api_key = d.pop("api_key")

        class_id = d.pop("class_id")

        expires_at_ms = d.pop("expires_at_ms")

        issuer = d.pop("issuer")

        viewer_session = cls(
            api_key=api_key,
            class_id=class_id,
            expires_at_ms=expires_at_ms,
            issuer=issuer,
        )

        viewer_session.additional_properties = d
        return viewer_session

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
