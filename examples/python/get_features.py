# examples/python/get_features.py - read (and write) features from a running `fstore serve`.
"""Usage: /usr/bin/python3 examples/python/get_features.py [HOST:PORT]

Uses clients/python/fstore_client.py and the stubs generated into build/<preset>/python (or
$FSTORE_PY_STUBS). Any Feast client works too: fstore speaks feast.serving.ServingService.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "clients", "python"))
from fstore_client import FeatureStoreClient  # noqa: E402


def show(title, result):
    print(title)
    for name, values in result.items():
        print("  %-36s %-28s %s" % (name, values, result.statuses[name]))


def main():
    target = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:6566"
    with FeatureStoreClient(target) as c:
        print("fstore", c.serving_info(), "-", c.health())
        show("feature service driver_activity_v1:",
             c.get_online_features(feature_service="driver_activity_v1",
                                   entities={"driver_id": [1001, 1002, 9999]}))
        show("two versions side by side:",
             c.get_online_features(features=["driver_hourly_stats@v1:conv_rate",
                                             "driver_hourly_stats@v2:conv_rate"],
                                   entities={"driver_id": [1001]}, full_feature_names=True))
        written, stale = c.write_features("driver_realtime_stats",
                                          {"driver_id": [1001], "trips_today": [2]})
        print("write: %d row(s) written, %d stale" % (written, stale))
        show("after the write:",
             c.get_online_features(features=["driver_realtime_stats:trips_today"],
                                   entities={"driver_id": [1001]}))


if __name__ == "__main__":
    main()
