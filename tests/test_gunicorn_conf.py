"""gunicorn's configuration: the collector tuned for a request server (bench/README.md)."""

import gc

from bookings_project import gunicorn_conf


def test_the_master_freezes_what_it_loaded_and_workers_collect_less_often(monkeypatch):
    monkeypatch.setattr(gunicorn_conf.gunicorn_errors, "install", lambda: None)
    thresholds = gc.get_threshold()
    try:
        gunicorn_conf.when_ready(server=None)
        assert gc.get_freeze_count() > 10_000  # Django, DRF and the project, at least
        gunicorn_conf.post_fork(server=None, worker=None)
        assert gc.get_threshold() == gunicorn_conf.GC_THRESHOLDS
        assert gunicorn_conf.GC_THRESHOLDS[0] > thresholds[0]
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
