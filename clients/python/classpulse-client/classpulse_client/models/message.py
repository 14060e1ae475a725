from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

T = TypeVar("T", bound="Message")


@_attrs_define
class Message:
    """
    Attributes:
        body (str): the JSON sent, the same on every attempt
        message_id (str): the same on every attempt: receivers drop what they already have by it
        target (str): webhook:<subscription id>, or xapi
        type_ (str):
        attempt (int | Unset):  Default: 1.
    """

    body: str
    message_id: str
    target: str
    type_: str
    attempt: int | Unset = 1
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        body = self.body

        message_id = self.message_id

        target = self.target

        type_ = self.type_

        attempt = self.attempt

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "body": body,
                "message_id": message_id,
                "target": target,
                "type": type_,
            }
        )
        if attempt is not UNSET:
            field_dict["attempt"] = attempt

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        body = d.pop("body")

        message_id = d.pop("message_id")

        target = d.pop("target")

        type_ = d.pop("type")

        attempt = d.pop("attempt", UNSET)

        message = cls(
            body=body,
            message_id=message_id,
            target=target,
            type_=type_,
            attempt=attempt,
        )

        message.additional_properties = d
        return message

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
