from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

T = TypeVar("T", bound="Attempt")


@_attrs_define
class Attempt:
    """
    Attributes:
        at_ms (int):
        attempt (int):
        message_id (str):
        outcome (str): delivered, retrying (next_attempt_at_ms says when) or dead (given up)
        type_ (str):
        error (None | str | Unset):
        http_status (int | None | Unset):
        next_attempt_at_ms (int | None | Unset):
    """

    at_ms: int
    attempt: int
    message_id: str
    outcome: str
    type_: str
    error: None | str | Unset = UNSET
    http_status: int | None | Unset = UNSET
    next_attempt_at_ms: int | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        at_ms = self.at_ms

        attempt = self.attempt

        message_id = self.message_id

        outcome = self.outcome

        type_ = self.type_

        error: None | str | Unset
        if isinstance(self.error, Unset):
            error = UNSET
        else:
            error = self.error

        http_status: int | None | Unset
        if isinstance(self.http_status, Unset):
            http_status = UNSET
        else:
            http_status = self.http_status

        next_attempt_at_ms: int | None | Unset
        if isinstance(self.next_attempt_at_ms, Unset):
            next_attempt_at_ms = UNSET
        else:
            next_attempt_at_ms = self.next_attempt_at_ms

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "at_ms": at_ms,
                "attempt": attempt,
                "message_id": message_id,
                "outcome": outcome,
                "type": type_,
            }
        )
        if error is not UNSET:
            field_dict["error"] = error
        if http_status is not UNSET:
            field_dict["http_status"] = http_status
        if next_attempt_at_ms is not UNSET:
            field_dict["next_attempt_at_ms"] = next_attempt_at_ms

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        at_ms = d.pop("at_ms")

        attempt = d.pop("attempt")

        message_id = d.pop("message_id")

        outcome = d.pop("outcome")

        type_ = d.pop("type")

        def _parse_error(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        error = _parse_error(d.pop("error", UNSET))

        def _parse_http_status(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        http_status = _parse_http_status(d.pop("http_status", UNSET))

        def _parse_next_attempt_at_ms(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        next_attempt_at_ms = _parse_next_attempt_at_ms(d.pop("next_attempt_at_ms", UNSET))

        attempt = cls(
            at_ms=at_ms,
            attempt=attempt,
            message_id=message_id,
            outcome=outcome,
            type_=type_,
            error=error,
            http_status=http_status,
            next_attempt_at_ms=next_attempt_at_ms,
        )

        attempt.additional_properties = d
        return attempt

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
