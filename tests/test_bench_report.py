"""The benchmark's report says which figures the disk held back (bench/report.py)."""

from __future__ import annotations

from bench import report


def _result(*cores: dict[str, float]) -> dict:
    rows = [{"key": f"row-{i}", "cpu_cores": c} for i, c in enumerate(cores)]
    return {"sizes": [{"rows": rows, "floors": {}}], "warnings": []}


def test_figures_measured_while_the_disk_stalled_are_named_in_the_warnings():
    quiet = {"server": 1.2, "postgres_redis": 0.4, "wrk": 0.05, "other": 0.02, "disk_wait": 0.03}
    stalled = {**quiet, "disk_wait": 0.31}

    notes = report.warnings(_result(quiet, stalled, quiet))

    assert notes == [
        "1 of 3 figures were measured while the cores waited on the disk for more than "
        "0.15 cores (up to 0.31; see the cores columns): the disk held those figures back"
    ]
    assert report.warnings(_result(quiet, quiet)) == []


def test_cores_column_shows_the_disk_wait_and_a_dash_for_older_results():
    cores = {"server": 1.2, "postgres_redis": 0.4, "wrk": 0.05, "other": 0.02}

    assert report._cores({"cpu_cores": {**cores, "disk_wait": 0.07}}) == (
        "1.20, 0.40, 0.05, 0.02, 0.07"
    )
    assert report._cores({"cpu_cores": cores}) == "1.20, 0.40, 0.05, 0.02, –"
