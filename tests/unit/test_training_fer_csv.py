"""FER2013 CSV loading and validation: good files load, bad rows are named by their line number."""

import gzip

import numpy as np
import pytest

from classpulse_training.fer_csv import FerCsvError, check_fer_csv, load_fer_csv, load_training_csvs, write_fer_csv

pytestmark = pytest.mark.unit

HEADER = "emotion,pixels,Usage\n"


def _pixels(value: int = 7, count: int = 2304) -> str:
    return " ".join([str(value)] * count)


def _rows(n: int, usage: str = "Training") -> list[str]:
    return [f"{i % 7},{_pixels(i)},{usage}\n" for i in range(n)]


def test_round_trip_plain_and_gzip(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, 48, 48, 1), dtype=np.uint8)
    labels = np.array([0, 1, 2, 3, 6])
    usage = ["Training", "Training", "PublicTest", "PrivateTest", "PrivateTest"]
    for name in ("faces.csv", "faces.csv.gz"):
        data = load_fer_csv(write_fer_csv(tmp_path / name, images, labels, usage))
        np.testing.assert_array_equal(data.images, images)
        np.testing.assert_array_equal(data.labels, labels)
        assert data.usages == ["Training", "PublicTest", "PrivateTest"]
        assert data.lines.tolist() == [2, 3, 4, 5, 6]
        assert len(data.split("PrivateTest")) == 2


def test_pixels_keep_row_major_order(tmp_path):
    path = tmp_path / "order.csv"
    path.write_text(HEADER + f"3,{' '.join(str(i % 256) for i in range(2304))},Training\n")
    image = load_fer_csv(path).images[0, :, :, 0]
    assert image[0, 1] == 1 and image[1, 0] == 48 % 256


@pytest.mark.parametrize(
    ("bad_row", "expected"),
    [
        (f"9,{_pixels()},Training\n", "emotion 9 is outside 0-6"),
        (f"-1,{_pixels()},Training\n", "emotion -1 is outside 0-6"),
        (f"x,{_pixels()},Training\n", "emotion 'x' is not an integer"),
        (f"1,{_pixels(count=2303)},Training\n", "expected 2304 pixels, found 2303"),
        (f"1,{_pixels(count=2305)},Training\n", "expected 2304 pixels, found 2305"),
        (f"1,{_pixels()}x,Training\n", "pixel value '7x' is not an integer"),
        (f"1,{_pixels(300)},Training\n", "pixel values must lie in 0-255"),
        (f"1,{_pixels()}\n", "expected 3 fields, found 2"),
        (f"1,{_pixels()},\n", "Usage is empty"),
    ],
)
def test_bad_row_is_reported_with_its_line(tmp_path, bad_row, expected):
    path = tmp_path / "bad.csv"
    path.write_text(HEADER + "".join(_rows(3)) + bad_row + "".join(_rows(2)))
    checked = check_fer_csv(path)
    assert [(p.line, p.message) for p in checked.problems] == [(5, expected)]
    assert len(checked.data) == 5  # the good rows are all kept
    with pytest.raises(FerCsvError, match=f"line 5: {expected}"):
        load_fer_csv(path)


def test_wrong_header_is_a_line_1_problem(tmp_path):
    path = tmp_path / "header.csv"
    path.write_text("label,pixels,split\n" + "".join(_rows(2)))
    checked = check_fer_csv(path)
    assert len(checked.problems) == 1 and checked.problems[0].line == 1
    assert "header must be emotion,pixels,Usage" in checked.problems[0].message
    with pytest.raises(FerCsvError, match="line 1"):
        load_fer_csv(path)


def test_all_problems_listed_and_error_message_truncated(tmp_path):
    path = tmp_path / "many.csv.gz"
    with gzip.open(path, "wt") as handle:
        handle.write(HEADER + "".join(f"8,{_pixels()},Training\n" for _ in range(15)))
    checked = check_fer_csv(path)
    assert [p.line for p in checked.problems] == list(range(2, 17))
    with pytest.raises(FerCsvError, match=r"15 invalid row\(s\).*line 11:.*\(and 5 more\)"):
        load_fer_csv(path)


def test_empty_file_raises(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text(HEADER)
    with pytest.raises(FerCsvError, match="no data rows"):
        load_fer_csv(path)


def test_truncated_gzip_keeps_rows_before_the_cut(tmp_path):
    whole = gzip.compress((HEADER + "".join(_rows(40))).encode())
    path = tmp_path / "truncated.csv.gz"
    path.write_bytes(whole[: len(whole) * 2 // 3])
    checked = check_fer_csv(path)
    assert len(checked.problems) == 1 and "cannot read further" in checked.problems[0].message
    assert 0 < len(checked.data) < 40
    assert checked.problems[0].line > checked.data.lines.max()


def test_an_extra_training_csv_adds_only_its_training_rows_after_the_data_sets(tmp_path):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (8, 48, 48, 1), dtype=np.uint8)
    base = write_fer_csv(tmp_path / "fer.csv", images[:4], np.array([0, 1, 2, 3]), ["Training", "Training", "PublicTest", "PublicTest"])
    extra = write_fer_csv(tmp_path / "framed.csv.gz", images[4:], np.array([4, 5, 6, 0]), ["Training", "PublicTest", "Training", "Training"])
    data = load_training_csvs(base, extra, "Training")
    assert data.labels.tolist() == [0, 1, 2, 3, 4, 6, 0]
    assert data.usage.tolist() == ["Training", "Training", "PublicTest", "PublicTest", "Training", "Training", "Training"]
    np.testing.assert_array_equal(data.images[4:], images[[4, 6, 7]])
    assert len(data.split("PublicTest")) == 2  # the selection split stays the data set's own
    assert load_training_csvs(base, "", "Training").labels.tolist() == [0, 1, 2, 3]
