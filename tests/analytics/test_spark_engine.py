import pytest

from distillguard.analytics.scan import ScanOptions, scan
from distillguard.analytics.simulate import SimConfig, simulate


@pytest.mark.spark
@pytest.mark.slow
def test_spark_and_duckdb_give_the_same_scores(tmp_path):
    pytest.importorskip("pyspark")
    res = simulate(tmp_path, SimConfig(n_benign=40, days=2, n_sybil=6, n_hydra=3, seed=3))
    a = scan([str(res.log_path)], ScanOptions(engine="duckdb"))
    b = scan([str(res.log_path)], ScanOptions(engine="spark"))

    def key(r):
        return {
            x["account_id"]: (x["score"], x["flagged"], x["campaign_id"], x["features"])
            for x in r["accounts"]
        }

    assert key(a) == key(b)
    assert [(c["accounts"], c["score"]) for c in a["campaigns"]] == [
        (c["accounts"], c["score"]) for c in b["campaigns"]
    ]
