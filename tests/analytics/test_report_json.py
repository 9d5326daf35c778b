"""report.json: one JSON document, one account a line, read back as the same dict."""

import json
from decimal import Decimal

from distillguard.analytics.report_json import write_report


def test_report_reads_back_the_same_with_one_account_a_line(tmp_path):
    report = {
        "accounts": [
            {"account_id": f"a{i}", "score": i / 7, "reasons": [f"r{i}", 'x, "q"\nline'], "n": Decimal(i)}
            for i in range(5)
        ],
        "campaigns": [],
        "skipped": {"total": 0, "by_reason": {}},
        "summary": {"events": 5, "seconds": {"total": 0.5}},
    }
    path = write_report(report, tmp_path / "report.json")
    text = path.read_text(encoding="utf-8")
    back = json.loads(text)
    assert back == json.loads(json.dumps(report, default=float))
    lines = text.splitlines()
    assert sum(line.startswith('{"account_id": ') for line in lines) == 5
    assert '"campaigns": []' in text
