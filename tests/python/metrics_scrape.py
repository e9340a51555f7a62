"""Scrapes quiltd's metrics endpoint and parses it with the Prometheus
project's own client library (OpenMetrics parser); prints every sample as
one JSON object per line: {"name", "labels", "value"}."""
import json
import sys
import urllib.request

from prometheus_client.openmetrics.parser import text_string_to_metric_families

url = sys.argv[1]
with urllib.request.urlopen(url, timeout=10) as r:
    ctype = r.headers.get("Content-Type", "")
    body = r.read().decode()
assert ctype.startswith("application/openmetrics-text"), ctype
for family in text_string_to_metric_families(body):
    for s in family.samples:
        print(json.dumps({"name": s.name, "labels": s.labels, "value": s.value}))
