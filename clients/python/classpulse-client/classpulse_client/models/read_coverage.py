from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="ReadCoverage")


@_attrs_define
class ReadCoverage:
    """Which stored series answered: the range is read from the finest series still holding each part of it.

    Attributes:
        bucket_ms (int): the width of the buckets the answer was computed from
        held_from (str): ISO 8601: the oldest instant any series still keeps; earlier parts are gone
        resolutions (list[str]): the series read, finest first: 1s (raw), 10s, 1m, 1h
    """

    bucket_ms: int
    held_from: str
    resolutions: list[str]
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        bucket_ms = self.bucket_ms

        held_from = self.held_from

        resolutions = self.resolutions

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "bucket_ms": bucket_ms,
                "held_from": held_from,
                "resolutions": resolutions,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        bucket_ms = d.pop("bucket_ms")

        held_from = d.pop("held_from")

        resolutions = cast(list[str], d.pop("resolutions"))

        read_coverage = cls(
            bucket_ms=bucket_ms,
            held_from=held_from,
            resolutions=resolutions,
        )

        read_coverage.additional_properties = d
        return read_coverage

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
