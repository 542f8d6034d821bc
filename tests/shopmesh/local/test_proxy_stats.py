"""Each version's figures from its callers' counters: window differences, restarted proxies,
the p99 from histogram buckets as Prometheus' histogram_quantile reads them."""

import math

import pytest

from shopmesh.local.proxy_stats import Counts, Figures, Window, _buckets, _host_counters, quantile

INF = math.inf


def test_the_quantile_interpolates_inside_its_bucket():
    buckets = [(10.0, 50), (20.0, 90), (50.0, 100), (INF, 100)]
    assert quantile(0.5, buckets) == pytest.approx(10.0)
    assert quantile(0.7, buckets) == pytest.approx(15.0)  # 20 of the 40 calls in (10, 20]
    assert quantile(0.99, buckets) == pytest.approx(20 + 30 * 9 / 10)


def test_the_quantile_past_the_last_finite_bound_is_that_bound_and_none_without_calls():
    assert quantile(0.99, [(500.0, 90), (INF, 100)]) == 500.0
    assert quantile(0.99, [(500.0, 0), (INF, 0)]) is None
    assert quantile(0.99, []) is None


def test_a_window_counts_what_happened_since_it_opened():
    before = Counts(100, 1, ((10.0, 90), (INF, 100)))
    after = Counts(160, 4, ((10.0, 140), (INF, 160)))
    assert after.since(before) == Counts(60, 3, ((10.0, 50), (INF, 60)))


def test_a_proxy_restarted_in_the_window_counts_whole():
    before = Counts(1000, 5, ((10.0, 900), (INF, 1000)))
    restarted = Counts(30, 1, ((10.0, 29), (INF, 30)))
    assert restarted.since(before) == restarted


def test_figures_add_up_every_caller():
    figures = Figures.of(
        [Counts(90, 0, ((10.0, 90), (INF, 90))), Counts(10, 2, ((10.0, 5), (INF, 10)))]
    )
    assert (figures.requests, figures.errors) == (100, 2)
    assert figures.error_rate == pytest.approx(0.02)
    assert figures.p99_ms == 10.0  # 95 of 100 calls within 10 ms, the rest beyond the last bound


def test_host_counters_and_latency_buckets_are_read_per_version_cluster():
    clusters = {
        "cluster_statuses": [
            {"name": "catalog", "host_statuses": [
                {"stats": [{"name": "rq_total", "value": "7"}, {"name": "rq_error"}]},
                {"stats": [{"name": "rq_total", "value": "3"}, {"name": "rq_error", "value": "1"}]},
            ]},
            {"name": "catalog-canary", "host_statuses": []},
            {"name": "order", "host_statuses": [{"stats": [{"name": "rq_total", "value": "9"}]}]},
        ]
    }  # fmt: skip
    assert _host_counters(clusters, ("catalog", "catalog-canary")) == {
        "catalog": (10, 1),
        "catalog-canary": (0, 0),
    }
    text = "\n".join(
        [
            "# TYPE envoy_cluster_upstream_rq_time histogram",
            'envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name="catalog",le="5"} 3',
            'envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name="catalog",le="+Inf"} 4',
            'envoy_cluster_upstream_rq_time_sum{envoy_cluster_name="catalog"} 40',
            'envoy_cluster_upstream_rq_time_count{envoy_cluster_name="catalog"} 4',
        ]
    )
    assert _buckets(text) == {"catalog": ((5.0, 3), (INF, 4))}


class FakeMeter:
    clusters = ("catalog", "catalog-canary")

    def __init__(self, readings):
        self.readings = iter(readings)

    def read(self):
        return next(self.readings)


def test_a_window_sums_its_callers_and_counts_a_caller_that_joined_late_whole():
    start = {"catalog": {"edge": Counts(10)}, "catalog-canary": {"edge": Counts(0)}}
    later = {
        "catalog": {"edge": Counts(30), "order-0": Counts(5)},
        "catalog-canary": {"edge": Counts(4, 1)},
    }
    figures = Window(FakeMeter([start, later])).figures()
    assert figures["catalog"].requests == 25
    assert (figures["catalog-canary"].requests, figures["catalog-canary"].errors) == (4, 1)
