from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.read_coverage import ReadCoverage
    from ..models.series_point import SeriesPoint


T = TypeVar("T", bound="ClassTimeseries")


@_attrs_define
class ClassTimeseries:
    """
    Attributes:
        bucket (str): the bucket width of the points (wider than asked where only coarser series hold the range)
        bucket_ms (int):
        class_id (str):
        coverage (ReadCoverage): Which stored series answered: the range is read from the finest series still holding
            each part of it.
        emotion_enabled (bool):
        emotion_status (str):
        end (str):
        points (list[SeriesPoint]):
        start (str):
    """

    bucket: str
    bucket_ms: int
    class_id: str
    coverage: ReadCoverage
    emotion_enabled: bool
    emotion_status: str
    end: str
    points: list[SeriesPoint]
    start: str
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        bucket = self.bucket

        bucket_ms = self.bucket_ms

        class_id = self.class_id

        coverage = self.coverage.to_dict()

        emotion_enabled = self.emotion_enabled

        emotion_status = self.emotion_status

        end = self.end

        points = []
        for points_item_data in self.points:
            points_item = points_item_data.to_dict()
            points.append(points_item)

        start = self.start

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "bucket": bucket,
                "bucket_ms": bucket_ms,
                "class_id": class_id,
                "coverage": coverage,
                "emotion_enabled": emotion_enabled,
                "emotion_status": emotion_status,
                "end": end,
                "points": points,
                "start": start,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.read_coverage import ReadCoverage  # noqa: PLC0415
        from ..models.series_point import SeriesPoint  # noqa: PLC0415

        d = dict(src_dict)
        bucket = d.pop("bucket")

        bucket_ms = d.pop("bucket_ms")

        class_id = d.pop("class_id")

        coverage = ReadCoverage.from_dict(d.pop("coverage"))

        emotion_enabled = d.pop("emotion_enabled")

        emotion_status = d.pop("emotion_status")

        end = d.pop("end")

        points = []
        _points = d.pop("points")
        for points_item_data in _points:
            points_item = SeriesPoint.from_dict(points_item_data)

            points.append(points_item)

        start = d.pop("start")

        class_timeseries = cls(
            bucket=bucket,
            bucket_ms=bucket_ms,
            class_id=class_id,
            coverage=coverage,
            emotion_enabled=emotion_enabled,
            emotion_status=emotion_status,
            end=end,
            points=points,
            start=start,
        )

        class_timeseries.additional_properties = d
        return class_timeseries

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
